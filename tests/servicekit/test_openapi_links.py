"""The documents link each create to the operations on what it created (OpenAPI links), built
from the route declarations: a client, or Schemathesis's stateful phase, follows them."""

from __future__ import annotations

from customers.views import routes as customer_routes
from security.views import routes as security_routes
from servicekit.openapi import document


def test_a_create_links_to_reading_changing_and_deleting_what_it_created() -> None:
    paths = document("customers", customer_routes)["paths"]
    links = paths["/customers"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "get_customers_id",
        "put_customers_id",
        "patch_customers_id",
        "delete_customers_id",
    }
    assert links["get_customers_id"]["parameters"] == {"id": "$response.body#/id"}
    nested = paths["/organizations/{id}/organization_associations"]["post"]["responses"]["201"]["links"]
    one = nested["get_organizations_id_organization_associations_association_id"]
    assert one["parameters"] == {"id": "$request.path.id", "association_id": "$response.body#/id"}


def test_a_link_takes_the_created_records_own_name_when_it_has_one() -> None:
    """A grant is named by its organization, not by a row id."""
    paths = document("security", security_routes)["paths"]
    (link,) = paths["/users/{id}/grants"]["post"]["responses"]["201"]["links"].values()
    assert link["parameters"] == {
        "id": "$request.path.id",
        "organization_id": "$response.body#/organization_id",
    }


def test_no_link_where_nothing_was_created() -> None:
    paths = document("customers", customer_routes)["paths"]
    for ops in paths.values():
        for method, op in ops.items():
            if method != "post":
                assert all("links" not in answer for answer in op["responses"].values())
