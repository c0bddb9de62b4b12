-- Replication slots and the WAL each one holds back on this server.
WITH here AS (
    SELECT CASE WHEN pg_is_in_recovery()
                THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END AS lsn
)
SELECT s.slot_name::text AS slot_name,
       s.slot_type,
       s.active,
       s.active_pid,
       s.restart_lsn::text AS restart_lsn,
       pg_wal_lsn_diff(here.lsn, s.restart_lsn)::bigint AS retained_bytes,
       s.wal_status
FROM pg_replication_slots AS s
CROSS JOIN here
ORDER BY s.slot_name
