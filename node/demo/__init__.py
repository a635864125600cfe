"""The demonstration federation: synthetic classes and a district with schools on this machine."""
