"""nst_helpers: the tested reference code behind the neural style transfer course."""
