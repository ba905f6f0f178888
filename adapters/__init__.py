"""Partner protocol adapters: one module per protocol behind :class:`adapters.base.Adapter`."""
