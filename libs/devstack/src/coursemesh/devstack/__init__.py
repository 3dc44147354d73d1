"""coursemesh development stack: embedded infrastructure, the gateway, ``coursemesh`` CLI,
pytest fixtures.

Kept import-free on purpose (the SMTP child and the pytest plugin import this package):
import from the submodules —

- :mod:`coursemesh.devstack.stack`   ``Stack``, ``StackConfig``, ``StackError``
- :mod:`coursemesh.devstack.infra`   ``EmbeddedPostgres``, ``EmbeddedNats``, ``EmbeddedS3``,
  ``EmbeddedSmtp``, ``CaddyGateway``, ``S3Config``, ``create_database``
- :mod:`coursemesh.devstack.services` ``SERVICES``, ``ServiceSpec``, ``StackEndpoints``
- :mod:`coursemesh.devstack.keys`    ``DevIdentity``, ``mint_token``, ``verify_token``
- :mod:`coursemesh.devstack.mailbox` ``Mailbox``
- :mod:`coursemesh.devstack.ports`   ``free_port``, ``claim_port``
- :mod:`coursemesh.devstack.testing` ``assert_pids_gone``, ``processes_with``
"""
