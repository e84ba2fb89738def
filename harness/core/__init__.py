"""The ground layer: what the fakes and the clients share.

BER (`ber`), LDAP result codes (`ldapresult`), DNs (`dn`), the AD schema tables (`adschema`),
YAML node reading (`yamlnodes`), the endpoints file (`endpoints`) and the errors every layer
raises (`errors`). Imports nothing above itself (tests/test_layers.py).
"""
