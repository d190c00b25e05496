"""``determined.launch.*`` run ridgeline's launchers (``ridgeline.launch``)."""
