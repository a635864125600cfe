"""The school's own data: pupils and results, encrypted at rest, and their backups."""
