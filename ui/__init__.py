"""The dashboard (`tradewire ui`): the trader's and operator's view of the whole book, on its own
port, signed in with the admin token. Temporal's UI stays the place to inspect one workflow.

Every action it offers (the kill switch, incident answers) runs the webhook's own handler
(ui/actions.py), so each action has one implementation; every read is a query on the rows
PostgreSQL already has (ui/queries.py, ui/quality.py)."""
