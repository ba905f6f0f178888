"""Partner simulators (REST and SOAP) and the demo: stand-ins for the regions' systems."""
