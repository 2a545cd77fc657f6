"""The system run for tests and benchmarks alike: the suite's settings and catalog, servers on
free ports, signed webhook bodies, the Stripe SDK on the emulator, GraphQL calls with tokens,
direct reads of the service's database and the command line as a user runs it."""
