"""The documented writeback attribute set of Entra Cloud Sync's "EXO to AD attribute sync".

AD attribute -> Exchange Online source property, for mailboxes with IsExchangeCloudManaged.
The GA set has 24 targets; the preview set is the same without `mail`. Used by the writeback
engine's profiles and by the fake directory's ACL for the writeback service account.
"""

from __future__ import annotations

from typing import Final

GA_ATTRIBUTES: Final[dict[str, str]] = {
    **{f"extensionAttribute{i}": f"CustomAttribute{i}" for i in range(1, 16)},
    **{f"msExchExtensionCustomAttribute{i}": f"ExtensionCustomAttribute{i}" for i in range(1, 6)},
    "msExchRecipientDisplayType": "RecipientTypeDetails",
    "msExchRecipientTypeDetails": "RecipientTypeDetails",
    "proxyAddresses": "EmailAddresses",
    "mail": "WindowsEmailAddress",
}
PREVIEW_ATTRIBUTES: Final[dict[str, str]] = {k: v for k, v in GA_ATTRIBUTES.items() if k != "mail"}
