"""What a check found, for a person and for a machine (:mod:`.check_report`)."""
