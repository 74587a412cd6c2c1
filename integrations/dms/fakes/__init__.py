"""Local fakes of each DMS, speaking the vendor's wire format, for tests and the demo."""
