"""Infrastructure every room of billing uses: settings, the database and its migrations, customer
locks, the change feed, logs, metrics, JWT verification."""
