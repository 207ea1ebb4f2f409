-- KEYS (2): events job
-- A job's events after an id, oldest first, from its log (see put.lua), or for a finished job
-- whose log is gone, its final event from its record (see append_event), in one round trip.
-- ARGV[1] after id ('' for the first)   ARGV[2] limit
-- Returns {{id, type, data}, ...}.
return events_after(K.events, K.job, ARGV[1], tonumber(ARGV[2]))
