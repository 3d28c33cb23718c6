"""One prompt over many inputs (--each, map()) and the Batch API."""
