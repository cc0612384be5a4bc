"""Baselines trained in the same harness as the chip. Neither is all-optical:
``HybridBaseline`` has a digital network in the light path (a *hybrid*), and
``DigitalVAE`` is fully electronic."""
