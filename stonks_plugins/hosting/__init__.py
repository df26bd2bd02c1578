"""How the host serves the plugin types other than brokers, without core changes:
aggregators' panels (:mod:`.aggregators`), view plugins' pages, templates, static files and
navigation (:mod:`.views`, :mod:`.templates`, :mod:`.nav`), and middleware around broker
service calls (:mod:`.middleware`). Each asks the bridge which plugins this process serves,
so enabling or disabling one takes effect everywhere within the propagation delay."""
