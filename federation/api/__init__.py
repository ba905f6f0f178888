"""The HTTP edge: the aiohttp application, authentication, intake, support, inbound REST/SOAP.

The only layer that speaks HTTP: it turns requests into runtime calls and domain errors into
problem details (RFC 9457) or SOAP faults.
"""
