-- WAL senders. Lag bytes are measured from this server's own WAL position (on a cascading
-- standby, the last received LSN) so the figures come from one clock and one LSN space.
WITH here AS (
    SELECT CASE WHEN pg_is_in_recovery()
                THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END AS lsn
)
SELECT r.pid,
       r.application_name,
       host(r.client_addr) AS client_addr,
       r.backend_start,
       r.state,
       r.sync_state,
       r.sent_lsn::text AS sent_lsn,
       r.write_lsn::text AS write_lsn,
       r.flush_lsn::text AS flush_lsn,
       r.replay_lsn::text AS replay_lsn,
       pg_wal_lsn_diff(here.lsn, r.sent_lsn)::bigint AS sent_lag_bytes,
       pg_wal_lsn_diff(here.lsn, r.write_lsn)::bigint AS write_lag_bytes,
       pg_wal_lsn_diff(here.lsn, r.flush_lsn)::bigint AS flush_lag_bytes,
       pg_wal_lsn_diff(here.lsn, r.replay_lsn)::bigint AS replay_lag_bytes,
       extract(epoch FROM r.write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM r.flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds,
       s.slot_name
FROM pg_stat_replication AS r
CROSS JOIN here
LEFT JOIN pg_replication_slots AS s ON s.active_pid = r.pid
ORDER BY r.application_name, r.pid
