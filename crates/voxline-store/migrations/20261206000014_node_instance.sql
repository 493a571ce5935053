-- Which running process holds a node name: "host/pid/process-start/n". Two nodes
-- left with the same name on one store would close each other's live calls
-- at start-up; a second process with a name in use is refused instead.
ALTER TABLE nodes ADD COLUMN instance TEXT;
