"""How messages leave the hotline: one seam (`base.Carrier`), Twilio's REST API or the simulator's table."""

from __future__ import annotations

from hotline.delivery.carrier.base import Carrier


def make_carrier(config, engine) -> Carrier:
    if config.simulator:
        from hotline.delivery.carrier.simulator import HOTLINE_NUMBER, SimulatedNetwork, SimulatorCarrier

        network = SimulatedNetwork(
            engine,
            step_seconds=config.simulator_step_seconds,
            ring_seconds=config.simulator_ring_seconds,
            hotline_number=config.from_number or HOTLINE_NUMBER,
        )
        return SimulatorCarrier(engine, network)
    from hotline.delivery.carrier.twilio import TwilioCarrier

    return TwilioCarrier(config)
