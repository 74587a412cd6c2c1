"""The customer's page (issue 28): a private link per text to the RO's live status,
line-by-line approvals, and booking the work the customer declined."""
