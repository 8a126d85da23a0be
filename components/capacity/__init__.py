"""How much one replica serves within an SLO (`meshserve capacity`)."""
