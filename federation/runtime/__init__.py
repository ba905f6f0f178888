"""The delivery runtime: the broker, its worker, deliveries, polling, notices, breakers.

Takes adapters and a journal from outside (``Broker(adapters=…, journal=…)``) and raises domain
errors only; turning them into HTTP answers is the ``api`` layer's job.
"""
