"""The writes of diagnostics, one module a subject: ``incidents`` (findings open and close
incidents), ``healing`` (self-healing resets), ``tickets`` (work orders), ``uploads``
(diagnostics log uploads), ``firmware`` (firmware campaigns). Import the module you need:
``from diagnostics.services import tickets``."""
