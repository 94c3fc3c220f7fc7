-- Runs once, on an empty data directory: POSTGRES_DB creates the gateway's database (fpslink);
-- mock_ibps keeps its own ledger in a second one.
CREATE DATABASE fpslink_ibps;
