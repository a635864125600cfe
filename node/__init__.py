"""The server a school or a district runs: storage, web app, sync. The only layer with I/O."""
