"""RFC 7583 timing arithmetic with the policy's TTLs, delays and margins."""

from __future__ import annotations

from provisioner.dnssec.policy import DnssecPolicy
from provisioner.rollover import machines, timing
from provisioner.rollover.timing import ZoneTimes

HOUR = 3600
DAY = 86400


def policy(**values: object) -> DnssecPolicy:
    return DnssecPolicy.model_validate(values)


def test_zsk_publication_interval_26h() -> None:
    zsk = policy(zsk_lifetime="30d", propagation_delay="1h", dnskey_ttl="1h", publish_safety="1d")
    assert timing.publication_interval(zsk) == 26 * HOUR


def test_zsk_retire_interval() -> None:
    zsk = policy(propagation_delay="1h", retire_safety="2h")
    assert timing.retire_interval(zsk, signature_ttl=DAY) == HOUR + DAY + 2 * HOUR
    assert timing.retire_interval(zsk, signature_ttl=DAY, signing_delay=600) == 600 + 27 * HOUR


def test_ds_interval() -> None:
    ksk = policy(parent_propagation_delay="2h", ds_ttl="1d", retire_safety="1h")
    assert timing.ds_interval(ksk) == 2 * HOUR + DAY + HOUR


def test_zsk_steps_use_the_intervals() -> None:
    zsk = policy(propagation_delay="1h", dnskey_ttl="1h", publish_safety="1d", retire_safety="1h")
    times = ZoneTimes(dnskey_ttl=HOUR, ds_ttl=DAY, max_ttl=2 * HOUR, negative_ttl=900)
    steps = machines.zsk_steps(zsk, times)
    assert [s.name for s in steps] == ["publish-new", "activate-new", "remove-old"]
    assert steps[0].wait.total == timing.publication_interval(zsk)
    assert steps[1].wait.total == timing.retire_interval(zsk, times.signature_ttl)
    assert steps[1].wait.total == HOUR + 2 * HOUR + HOUR


def test_signature_ttl_includes_negative_ttl() -> None:
    times = ZoneTimes(dnskey_ttl=300, ds_ttl=DAY, max_ttl=600, negative_ttl=3600)
    assert times.signature_ttl == 3600


def test_ksk_double_ds_waits() -> None:
    ksk = policy(
        parent_propagation_delay="1h",
        ds_ttl="2d",
        publish_safety="1h",
        dnskey_ttl="1h",
        propagation_delay="30m",
        retire_safety="2h",
    )
    times = ZoneTimes(dnskey_ttl=HOUR, ds_ttl=2 * DAY, max_ttl=HOUR, negative_ttl=HOUR)
    add_ds, swap, remove = machines.ksk_double_ds_steps(ksk, times)
    assert add_ds.wait.total == HOUR + 2 * DAY + HOUR
    assert add_ds.wait.propagation == HOUR
    assert swap.wait.total == 1800 + HOUR + 2 * HOUR
    assert remove.wait.total == 0


def test_mx_waits_two_tlsa_ttls() -> None:
    steps = machines.certificate_steps("mx", 600, 3600, record="TLSA", deploy=True)
    assert steps[0].wait.settle == 2 * 3600
    assert steps[0].wait.propagation == 600
    assert steps[1].deploy
    assert steps[1].observe == (machines.OBSERVE_MTA,)


def test_algorithm_rollover_signs_before_publishing() -> None:
    times = ZoneTimes(dnskey_ttl=HOUR, ds_ttl=DAY, max_ttl=HOUR, negative_ttl=HOUR)
    steps = machines.algorithm_steps(policy(), times)
    assert steps[0].new["sign"] is True
    assert steps[0].new["publish"] is False
    assert steps[1].new["publish"] is True
    assert steps[3].old["publish"] is False
    assert "sign" not in steps[3].old
    assert steps[4].old["sign"] is False


def test_rollover_start_time() -> None:
    assert timing.rollover_start_time(30 * DAY, 26 * HOUR) == 30 * DAY - 26 * HOUR
    assert timing.rollover_start_time(0, HOUR) == -1
    assert timing.rollover_start_time(HOUR, DAY) == 0


def test_lead_time_sums_waits_before_step() -> None:
    zsk = policy(propagation_delay="1h", dnskey_ttl="1h", publish_safety="1d")
    times = ZoneTimes(dnskey_ttl=HOUR, ds_ttl=DAY, max_ttl=HOUR, negative_ttl=HOUR)
    steps = machines.zsk_steps(zsk, times)
    assert machines.lead_time(steps, "activate-new") == 26 * HOUR


def test_step_round_trips_through_json() -> None:
    times = ZoneTimes(dnskey_ttl=HOUR, ds_ttl=DAY, max_ttl=HOUR, negative_ttl=HOUR)
    for step in machines.csk_steps(policy(), times):
        assert machines.Step.from_dict(step.as_dict()) == step
