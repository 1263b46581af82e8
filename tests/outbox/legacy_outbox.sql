-- An outbox written by Trackbox before operations were typed (unversioned payloads):
-- each row exactly as that version's Outbox.enqueue stored it, its payload made by that
-- version's builders (promote_payload, untrack_payload, regarding_payload, send_payload,
-- enqueue_new_records, save_user_options). Read by tests/outbox/test_upgrade.py.

-- Track in CRM (regarding a contact), while offline
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('promote', '<upgrade-a@fabrikam.example>', '<upgrade-a@fabrikam.example>',
        '{"attachment_limit": 5242880, "attachments": true, "body": null, "cc": [], "date": "2025-03-04T09:30:00+01:00", "folder": "Inbox", "in_reply_to": null, "message_id": "<upgrade-a@fabrikam.example>", "needs_review": false, "reason": ["manual", "Tracked manually by Alex Morgan"], "regarding": {"entity": "contact", "id": "5f1c3a52-8d0e-4c4f-9a51-0d6f2c7b1a01", "name": "Casey Upgrade"}, "sender": ["casey.upgrade@fabrikam.example", "Casey Upgrade"], "source": "user", "subject": "Quote for 20 chairs", "thread_index": null, "to": [["alex.morgan@contoso.example", "Alex Morgan"]], "uid": "1741077000:1"}',
        'queued', NULL, '2025-03-04T08:30:00.000000+00:00', '2025-03-04T08:30:00.000000+00:00');
-- the sync cycle: a contact for an unknown sender, before its promotion
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('create_record', '<upgrade-b@northwind.example>', '<upgrade-b@northwind.example>',
        '{"data": {"emailaddress1": "new.sender@northwind.example", "firstname": "Nina", "lastname": "Sender"}, "entity_set": "contacts", "id": "3c9d2e1f-4a5b-4c6d-8e7f-0a1b2c3d4e01", "subject": "New contact new.sender@northwind.example"}',
        'queued', NULL, '2025-03-04T08:31:00.000000+00:00', '2025-03-04T08:31:00.000000+00:00');
-- the sync cycle: automatic tracking
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('promote', '<upgrade-b@northwind.example>', '<upgrade-b@northwind.example>',
        '{"attachment_limit": 5242880, "attachments": true, "body": null, "cc": [], "date": "2025-03-04T09:30:00+01:00", "folder": "Inbox", "in_reply_to": null, "message_id": "<upgrade-b@northwind.example>", "needs_review": false, "reason": ["all-mail", "All incoming e-mail is tracked"], "regarding": null, "sender": ["new.sender@northwind.example", "Nina Sender"], "source": "auto", "subject": "Hello from Northwind", "thread_index": null, "to": [["alex.morgan@contoso.example", "Alex Morgan"]], "uid": "1741077000:2"}',
        'queued', NULL, '2025-03-04T08:32:00.000000+00:00', '2025-03-04T08:32:00.000000+00:00');
-- Set Regarding on the still pending mail
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('set_regarding', '<upgrade-b@northwind.example>', '<upgrade-b@northwind.example>',
        '{"message_id": "<upgrade-b@northwind.example>", "regarding": {"entity": "account", "id": "7a2b4c6d-1e3f-4a5b-8c7d-9e0f1a2b3c01", "name": "Upgrade Ltd"}}',
        'queued', NULL, '2025-03-04T08:33:00.000000+00:00', '2025-03-04T08:33:00.000000+00:00');
-- Track in CRM ...
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('promote', '<upgrade-c@fabrikam.example>', '<upgrade-c@fabrikam.example>',
        '{"attachment_limit": 5242880, "attachments": true, "body": null, "cc": [], "date": "2025-03-04T09:30:00+01:00", "folder": "Inbox", "in_reply_to": null, "message_id": "<upgrade-c@fabrikam.example>", "needs_review": false, "reason": ["manual", "Tracked manually by Alex Morgan"], "regarding": null, "sender": ["casey.upgrade@fabrikam.example", "Casey Upgrade"], "source": "user", "subject": "Tracked by mistake", "thread_index": null, "to": [["alex.morgan@contoso.example", "Alex Morgan"]], "uid": "1741077000:3"}',
        'queued', NULL, '2025-03-04T08:34:00.000000+00:00', '2025-03-04T08:34:00.000000+00:00');
-- ... then Untrack before the CRM had it (no activity id yet)
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('untrack', '<upgrade-c@fabrikam.example>', '<upgrade-c@fabrikam.example>',
        '{"activity_id": null, "message_id": "<upgrade-c@fabrikam.example>"}',
        'queued', NULL, '2025-03-04T08:35:00.000000+00:00', '2025-03-04T08:35:00.000000+00:00');
-- Untrack of mail tracked long ago
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('untrack', '<upgrade-d@fabrikam.example>', '<upgrade-d@fabrikam.example>',
        '{"activity_id": "d0d0d0d0-0000-4000-8000-0000000000d1", "message_id": "<upgrade-d@fabrikam.example>"}',
        'queued', NULL, '2025-03-04T08:36:00.000000+00:00', '2025-03-04T08:36:00.000000+00:00');
-- a mail written here and sent while offline ...
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('send_pending', 'send:<upgrade-g@contoso.example>', '<upgrade-g@contoso.example>',
        '{"activity_id": null, "message_id": "<upgrade-g@contoso.example>", "mime": "RnJvbTogQWxleCBNb3JnYW4gPGFsZXgubW9yZ2FuQGNvbnRvc28uZXhhbXBsZT4KVG86IENhc2V5IFVwZ3JhZGUgPGNhc2V5LnVwZ3JhZGVAZmFicmlrYW0uZXhhbXBsZT4KU3ViamVjdDogRm9sbG93aW5nIHVwCkRhdGU6IFR1ZSwgMDQgTWFyIDIwMjUgMDk6MzA6MDAgKzAxMDAKTWVzc2FnZS1JRDogPHVwZ3JhZGUtZ0Bjb250b3NvLmV4YW1wbGU+ClRocmVhZC1JbmRleDogQWQyRlBlbUs3MlFLUkpPVFRNeWo2MkYwdnlqQXlRPT0KQ29udGVudC1UeXBlOiB0ZXh0L3BsYWluOyBjaGFyc2V0PSJ1dGYtOCIKQ29udGVudC1UcmFuc2Zlci1FbmNvZGluZzogN2JpdApNSU1FLVZlcnNpb246IDEuMAoKQXMgcHJvbWlzZWQuCg==", "subject": "Following up"}',
        'queued', NULL, '2025-03-04T08:37:00.000000+00:00', '2025-03-04T08:37:00.000000+00:00');
-- ... and tracked (the MIME as sent)
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('promote', '<upgrade-g@contoso.example>', '<upgrade-g@contoso.example>',
        '{"attachment_limit": 5242880, "attachments": true, "body": null, "cc": [], "date": "2026-12-06T04:54:44.863808+00:00", "folder": "", "in_reply_to": null, "message_id": "<upgrade-g@contoso.example>", "mime": "RnJvbTogQWxleCBNb3JnYW4gPGFsZXgubW9yZ2FuQGNvbnRvc28uZXhhbXBsZT4KVG86IENhc2V5IFVwZ3JhZGUgPGNhc2V5LnVwZ3JhZGVAZmFicmlrYW0uZXhhbXBsZT4KU3ViamVjdDogRm9sbG93aW5nIHVwCkRhdGU6IFR1ZSwgMDQgTWFyIDIwMjUgMDk6MzA6MDAgKzAxMDAKTWVzc2FnZS1JRDogPHVwZ3JhZGUtZ0Bjb250b3NvLmV4YW1wbGU+ClRocmVhZC1JbmRleDogQWQyRlBlbUs3MlFLUkpPVFRNeWo2MkYwdnlqQXlRPT0KQ29udGVudC1UeXBlOiB0ZXh0L3BsYWluOyBjaGFyc2V0PSJ1dGYtOCIKQ29udGVudC1UcmFuc2Zlci1FbmNvZGluZzogN2JpdApNSU1FLVZlcnNpb246IDEuMAoKQXMgcHJvbWlzZWQuCg==", "needs_review": false, "reason": ["manual", "You chose to track it"], "regarding": {"entity": "contact", "id": "5f1c3a52-8d0e-4c4f-9a51-0d6f2c7b1a01", "name": "Casey Upgrade"}, "sender": ["alex.morgan@contoso.example", "Alex Morgan"], "source": "user", "subject": "Following up", "thread_index": null, "to": [["casey.upgrade@fabrikam.example", "Casey Upgrade"]], "uid": ""}',
        'queued', NULL, '2025-03-04T08:38:00.000000+00:00', '2025-03-04T08:38:00.000000+00:00');
-- a CRM e-mail in Pending Send
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('send_pending', 'send:e0e0e0e0-0000-4000-8000-0000000000e1', '<crm.e0e0e0e0-0000-4000-8000-0000000000e1@contoso.example>',
        '{"activity_id": "e0e0e0e0-0000-4000-8000-0000000000e1", "message_id": "<crm.e0e0e0e0-0000-4000-8000-0000000000e1@contoso.example>", "mime": "RnJvbTogQWxleCBNb3JnYW4gPGFsZXgubW9yZ2FuQGNvbnRvc28uZXhhbXBsZT4KVG86IENhc2V5IFVwZ3JhZGUgPGNhc2V5LnVwZ3JhZGVAZmFicmlrYW0uZXhhbXBsZT4KU3ViamVjdDogWW91ciBxdW90ZSBDUk06MDAwMTAwMQpEYXRlOiBTdW4sIDA2IERlYyAyMDI2IDA0OjU0OjQ0ICswMDAwCk1lc3NhZ2UtSUQ6IDxjcm0uZTBlMGUwZTAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMGUxQGNvbnRvc28uZXhhbXBsZT4KVGhyZWFkLUluZGV4OiBBZDJGUGVtS0V0UVdrbFc0UVEyRUNHV1ZCMEpERGc9PQpNSU1FLVZlcnNpb246IDEuMApDb250ZW50LVR5cGU6IG11bHRpcGFydC9hbHRlcm5hdGl2ZTsKIGJvdW5kYXJ5PSI9PT09PT09PT09PT09PT04MDc2MDc2MDc1ODk1NTI0MzgzPT0iCgotLT09PT09PT09PT09PT09PTgwNzYwNzYwNzU4OTU1MjQzODM9PQpDb250ZW50LVR5cGU6IHRleHQvcGxhaW47IGNoYXJzZXQ9InV0Zi04IgpDb250ZW50LVRyYW5zZmVyLUVuY29kaW5nOiA3Yml0CgpIZXJlIGl0IGlzLgoKLS09PT09PT09PT09PT09PT04MDc2MDc2MDc1ODk1NTI0MzgzPT0KQ29udGVudC1UeXBlOiB0ZXh0L2h0bWw7IGNoYXJzZXQ9InV0Zi04IgpDb250ZW50LVRyYW5zZmVyLUVuY29kaW5nOiA3Yml0Ck1JTUUtVmVyc2lvbjogMS4wCgo8cD5IZXJlIGl0IGlzLjwvcD4KCi0tPT09PT09PT09PT09PT09ODA3NjA3NjA3NTg5NTUyNDM4Mz09LS0K", "subject": "Your quote CRM:0001001"}',
        'queued', NULL, '2025-03-04T08:39:00.000000+00:00', '2025-03-04T08:39:00.000000+00:00');
-- another, handed to SMTP just before a crash (the checkpoint)
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('send_pending', 'send:f0f0f0f0-0000-4000-8000-0000000000f1', '<crm.f0f0f0f0-0000-4000-8000-0000000000f1@contoso.example>',
        '{"activity_id": "f0f0f0f0-0000-4000-8000-0000000000f1", "message_id": "<crm.f0f0f0f0-0000-4000-8000-0000000000f1@contoso.example>", "mime": "RnJvbTogQWxleCBNb3JnYW4gPGFsZXgubW9yZ2FuQGNvbnRvc28uZXhhbXBsZT4KVG86IENhc2V5IFVwZ3JhZGUgPGNhc2V5LnVwZ3JhZGVAZmFicmlrYW0uZXhhbXBsZT4KU3ViamVjdDogWW91ciBpbnZvaWNlIENSTTowMDAxMDAyCkRhdGU6IFN1biwgMDYgRGVjIDIwMjYgMDQ6NTQ6NDQgKzAwMDAKTWVzc2FnZS1JRDogPGNybS5mMGYwZjBmMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwZjFAY29udG9zby5leGFtcGxlPgpUaHJlYWQtSW5kZXg6IEFkMkZQZW1LVkY4clQ2K0xRNG1hbk9maHZKNDVGQT09Ck1JTUUtVmVyc2lvbjogMS4wCkNvbnRlbnQtVHlwZTogbXVsdGlwYXJ0L2FsdGVybmF0aXZlOwogYm91bmRhcnk9Ij09PT09PT09PT09PT09PTUyOTc1NzUwMDM5NzUyMTc5NjU9PSIKCi0tPT09PT09PT09PT09PT09NTI5NzU3NTAwMzk3NTIxNzk2NT09CkNvbnRlbnQtVHlwZTogdGV4dC9wbGFpbjsgY2hhcnNldD0idXRmLTgiCkNvbnRlbnQtVHJhbnNmZXItRW5jb2Rpbmc6IDdiaXQKCkhlcmUgaXQgaXMuCgotLT09PT09PT09PT09PT09PTUyOTc1NzUwMDM5NzUyMTc5NjU9PQpDb250ZW50LVR5cGU6IHRleHQvaHRtbDsgY2hhcnNldD0idXRmLTgiCkNvbnRlbnQtVHJhbnNmZXItRW5jb2Rpbmc6IDdiaXQKTUlNRS1WZXJzaW9uOiAxLjAKCjxwPkhlcmUgaXQgaXMuPC9wPgoKLS09PT09PT09PT09PT09PT01Mjk3NTc1MDAzOTc1MjE3OTY1PT0tLQo=", "subject": "Your invoice CRM:0001002"}',
        'queued', '{"smtp_sent": true}', '2025-03-04T08:40:00.000000+00:00', '2025-03-04T08:40:00.000000+00:00');
-- Options: the user's CRM settings
INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state, result_json, created_at, updated_at)
VALUES ('update_user_settings', 'usersettings', NULL,
        '{"data": {"autocreatecontactonpromote": 2, "incomingemailfilteringmethod": 3}, "user_id": "ff946a24-9392-57a4-a200-0442ccf39f89"}',
        'queued', NULL, '2025-03-04T08:41:00.000000+00:00', '2025-03-04T08:41:00.000000+00:00');
