// The tests of this target arrive with its implementation; this file keeps the target buildable.
