"""Contacts, appointments and tasks synchronised between the CRM and the mailbox: one engine
for the three kinds (issue 20). No Qt, no GUI."""
