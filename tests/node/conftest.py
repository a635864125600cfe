from storage_fixtures import campaign, school  # noqa: F401  (fixtures shared by the storage tests)
