"""ERP readers. Syncline only ever reads from the ERP."""
