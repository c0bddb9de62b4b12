-- WAL files waiting for archive_command. Needs superuser or pg_monitor (PostgreSQL 12+).
-- The lowest name is the oldest: history files and segments sort in archiving order.
SELECT count(*)::int AS ready_count,
       min(left(name, -length('.ready'))) AS oldest_ready
FROM pg_ls_archive_statusdir()
WHERE name LIKE '%.ready'
