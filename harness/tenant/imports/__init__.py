"""Reading an administrator's own exports (AD, Exchange Online, Graph) into a tenant folder."""
