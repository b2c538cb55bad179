"""The audit trail (django-auditlog entries, chained and exported).

- `trail`: registration with auditlog, the actor and correlation id, and
  `entry_build`, the one place LogEntry rows are built by hand.
- `chain`: the tamper-evident hash chain, appended on every entry and verified by
  `verify_auditlog`.
- `access`: the ACCESS entries for staff reads of predictions and for exports.
- `export`: filters and the CSV, JSON Lines and FHIR R4 formats.
- `retention`: purging old entries as a prefix of the chain.
- `api` and `admin`: the export endpoint and the audit log's admin.

The models (`AuditChainState`, `AuditChainLink`) and the export permission stay in
`predictions.models` under the app label `predictions`.
"""
