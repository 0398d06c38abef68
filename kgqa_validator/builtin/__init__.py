"""The built-in plugins: ordinary plugin modules, registered ``trylast`` as fallbacks."""
