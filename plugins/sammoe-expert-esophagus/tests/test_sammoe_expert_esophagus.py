"""The installed package is a well-formed sammoe expert plugin (sammoe's testing kit checks it)."""

pytest_plugins = ["sammoe_core.testing"]


def test_package_is_a_well_formed_expert_plugin():
    from sammoe_core.testing import check_expert_package

    experts = check_expert_package("sammoe-expert-esophagus")
    assert [e.name for e in experts] == ["esophagus"]


def test_sammoe_lists_the_expert_as_enabled(sammoe_home):
    from sammoe_core.experts import enabled_experts

    assert "esophagus" in enabled_experts()
