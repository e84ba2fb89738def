import pytest

from harness.tenant.spec import MAX_MAILBOXES, SpecError, TenantSpec


def test_defaults_are_valid_and_derive_names():
    spec = TenantSpec()
    spec.validate()
    assert spec.base_dn == "DC=contoso,DC=com"
    assert spec.onmicrosoft_domain == "contoso.onmicrosoft.com"
    assert spec.routing_domain == "contoso.mail.onmicrosoft.com"
    assert spec.netbios_name == "CONTOSO"
    assert len(spec.custom_fill_rates) == 15
    assert len(spec.extension_fill_rates) == 5


def test_tenant_name_and_multi_label_domain():
    spec = TenantSpec.from_mapping({"domain": "Corp.Fabrikam.co.uk", "tenant_name": "fabrikam"})
    assert spec.domain == "corp.fabrikam.co.uk"
    assert spec.base_dn == "DC=corp,DC=fabrikam,DC=co,DC=uk"
    assert spec.routing_domain == "fabrikam.mail.onmicrosoft.com"


def test_single_fill_rate_expands_to_every_attribute():
    spec = TenantSpec.from_mapping(
        {"custom_attribute_fill": 0.5, "extension_custom_attribute_fill": 1}
    )
    assert spec.custom_fill_rates == (0.5,) * 15
    assert spec.extension_fill_rates == (1.0,) * 5


@pytest.mark.parametrize(
    ("data", "knob", "text"),
    [
        ({"mailboxes": 0}, "mailboxes", "between 1"),
        ({"mailboxes": MAX_MAILBOXES + 1}, "mailboxes", "between 1"),
        ({"mailboxes": "many"}, "mailboxes", "whole number"),
        ({"mailboxes": 1.5}, "mailboxes", "whole number"),
        ({"mailboxes": True}, "mailboxes", "whole number"),
        ({"seed": -1}, "seed", "between 0"),
        ({"domain": "not a domain"}, "domain", "DNS domain"),
        ({"domain": 12}, "domain", "expected text"),
        ({"hidden_fraction": 1.5}, "hidden_fraction", "between 0 and 1"),
        ({"hidden_fraction": "x"}, "hidden_fraction", "expected a number"),
        ({"mailbox_mix": {"user": 1, "castle": 2}}, "mailbox_mix", "unknown key 'castle'"),
        ({"mailbox_mix": {"user": 0}}, "mailbox_mix", "above 0"),
        ({"mailbox_mix": [1, 2]}, "mailbox_mix", "mapping"),
        ({"proxy_address_extra": {"two": 1}}, "proxy_address_extra", "whole numbers"),
        ({"custom_attribute_fill": [0.1, 0.2]}, "custom_attribute_fill", "list of 15"),
        ({"custom_attribute_fill": "lots"}, "custom_attribute_fill", "number or a list"),
        ({"secondary_domains": ["contoso.com"]}, "secondary_domains", "distinct"),
        ({"site_ous": 0}, "site_ous", "between 1"),
        ({"onprem_mailboxes": -3}, "onprem_mailboxes", "between 0"),
    ],
)
def test_bad_knobs_name_the_knob(data, knob, text):
    with pytest.raises(SpecError) as err:
        TenantSpec.from_mapping(data)
    assert err.value.knob == knob
    assert text in err.value.message


def test_unknown_knob_suggests_the_closest():
    with pytest.raises(SpecError, match="did you mean 'hidden_fraction'"):
        TenantSpec.from_mapping({"hiden_fraction": 0.1})


def test_as_dict_round_trips():
    spec = TenantSpec.from_mapping({"mailboxes": 7, "proxy_address_extra": {0: 1, 2: 1}})
    again = TenantSpec.from_mapping(spec.as_dict())
    assert again == spec
