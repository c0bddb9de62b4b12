-- Role, version and WAL position. On a standby pg_current_wal_lsn() and pg_walfile_name() raise,
-- so the CASE keeps them out of reach there (both are volatile: no constant folding).
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       (CASE WHEN pg_is_in_recovery()
             THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
             ELSE pg_current_wal_lsn() END)::text AS current_lsn,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_wal_file
