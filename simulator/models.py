"""Machine models of the simulated fleet: their sensors and how they wear out.

The numbers are plausible, not measured. What matters for the pipeline is the
shape: different sensor sets per model, a firmware version that adds a column,
wear that shows up weakly in several sensors at once (so no single threshold
predicts failures well), and load that moves every sensor (so absolute levels
say little on their own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# decimals a controller writes per unit; a sensor overrides it where its range is narrow
DECIMALS_BY_UNIT: dict[str, int] = {
    "c": 1,
    "pct": 1,
    "bar": 1,
    "a": 1,
    "v": 1,
    "kw": 2,
    "kvar": 2,
    "kva": 2,
    "hz": 2,
    "mm_s": 2,
    "l_min": 1,
    "rpm": 0,
    "mm_min": 0,
}


@dataclass(frozen=True)
class Sensor:
    """One sensor column: value = idle + (run - idle) * load, plus wear and noise."""

    name: str
    idle: float
    run: float
    noise: float
    decimals: int | None = None  # None: the unit's usual resolution (DECIMALS_BY_UNIT)
    slow: bool = False  # thermal inertia: follows load with a lag
    ambient: bool = False  # follows the hall's daily temperature swing
    rated_min: float = 0.0
    rated_max: float = 0.0
    since_firmware: str | None = None  # None: present in every firmware
    spread: float = 0.07  # machine-to-machine spread of the level (calibration, wear-in)

    @property
    def resolution(self) -> int:
        """Decimals the controller writes: an instrument's display resolution, not the
        float's precision (0.1 °C, 0.01 mm/s, whole rpm)."""
        if self.decimals is not None:
            return self.decimals
        return DECIMALS_BY_UNIT.get(self.unit, 2)

    @property
    def unit(self) -> str:
        for suffix in (
            "mm_min",
            "mm_s",
            "l_min",
            "rpm",
            "pct",
            "bar",
            "kvar",
            "kva",
            "kw",
            "hz",
            "c",
            "a",
            "v",
        ):
            if self.name.endswith("_" + suffix):
                return suffix
        return ""


@dataclass(frozen=True)
class WearProcess:
    """A degradation that grows with running load and ends in a failure."""

    component: str
    failure_mode: str
    rate_per_run_hour: float  # mean wear gained per hour at full load (failure near 1.0)
    effects: dict[str, float] = field(default_factory=dict)  # sensor -> level gain at wear 1
    noise_effects: dict[str, float] = field(default_factory=dict)  # sensor -> noise gain


@dataclass(frozen=True)
class MachineModel:
    name: str
    kind: str
    firmwares: tuple[str, str]  # (original, update that adds the new sensor)
    sensors: tuple[Sensor, ...]
    wear: tuple[WearProcess, ...]
    rated_power_kw: float

    def sensors_for(self, firmware: str) -> list[Sensor]:
        """Columns a given firmware writes, in file order."""
        new = self.firmwares[1]
        return [s for s in self.sensors if s.since_firmware is None or firmware == new]


def _three_phase(prefix: str, idle: float, run: float) -> tuple[Sensor, ...]:
    currents = tuple(
        Sensor(f"{prefix}_current_l{i}_a", idle, run, run * 0.015, rated_max=run * 1.6)
        for i in (1, 2, 3)
    )
    voltages = tuple(
        Sensor(
            f"supply_voltage_l{i}_v", 381.0, 378.0, 1.2, rated_min=342, rated_max=418, spread=0.005
        )
        for i in (1, 2, 3)
    )
    return currents + voltages


def _cabinet(rated_kw: float) -> tuple[Sensor, ...]:
    """Channels every machine's controller logs: cabinet, drive, lubrication, totals."""
    return (
        Sensor("cabinet_temperature_c", 27.0, 33.0, 0.15, slow=True, ambient=True, rated_max=45),
        Sensor("ambient_temperature_c", 24.0, 24.5, 0.1, ambient=True, rated_max=40, spread=0.01),
        Sensor(
            "air_pressure_bar",
            6.2,
            6.0,
            0.03,
            decimals=2,
            rated_min=5.0,
            rated_max=7.5,
            spread=0.02,
        ),
        Sensor("ambient_humidity_pct", 58.0, 57.0, 0.4, rated_max=90, spread=0.02),
        Sensor("cabinet_humidity_pct", 41.0, 36.0, 0.4, slow=True, rated_max=70),
        Sensor("drive_temperature_c", 29.0, 41.0, 0.12, slow=True, ambient=True, rated_max=75),
        Sensor(
            "motor_winding_temperature_c", 28.0, 62.0, 0.15, slow=True, ambient=True, rated_max=130
        ),
        Sensor("dc_bus_voltage_v", 565.0, 558.0, 1.5, rated_min=500, rated_max=650, spread=0.01),
        Sensor("fan_current_a", 0.4, 1.2, 0.02, decimals=2, rated_max=3),
        Sensor("lube_pressure_bar", 1.8, 2.4, 0.03, decimals=2, rated_min=1.0, rated_max=4.0),
        Sensor("lube_temperature_c", 26.0, 35.0, 0.1, slow=True, ambient=True, rated_max=60),
        Sensor("total_current_a", 6.0, rated_kw * 1.6, rated_kw * 0.02, rated_max=rated_kw * 3),
        Sensor("total_power_kw", 1.2, rated_kw * 0.6, rated_kw * 0.01, rated_max=rated_kw * 1.2),
        Sensor("reactive_power_kvar", 0.9, rated_kw * 0.3, rated_kw * 0.008, rated_max=rated_kw),
        Sensor(
            "apparent_power_kva", 1.5, rated_kw * 0.7, rated_kw * 0.01, rated_max=rated_kw * 1.4
        ),
        Sensor("power_factor", 0.55, 0.86, 0.01, rated_min=0.5, rated_max=1.0, spread=0.02),
        Sensor("supply_frequency_hz", 60.0, 59.98, 0.02, rated_min=58, rated_max=62, spread=0.0),
        Sensor("phase_imbalance_pct", 0.8, 1.3, 0.1, rated_max=5),
        Sensor("voltage_thd_pct", 2.1, 2.6, 0.1, rated_max=8),
        Sensor("current_thd_pct", 6.0, 11.0, 0.3, rated_max=30),
        Sensor("neutral_current_a", 0.3, 2.5, 0.1, rated_max=10),
        Sensor("compressed_air_flow_l_min", 5.0, 60.0, 1.5, rated_max=200),
        Sensor("control_voltage_v", 24.1, 23.9, 0.05, rated_min=21.6, rated_max=26.4, spread=0.01),
        Sensor("cabinet_fan_speed_rpm", 1400.0, 2800.0, 20.0, rated_max=3600),
        Sensor(
            "motor_bearing_de_temperature_c",
            28.0,
            52.0,
            0.1,
            slow=True,
            ambient=True,
            rated_max=100,
        ),
        Sensor(
            "motor_bearing_nde_temperature_c",
            27.0,
            46.0,
            0.1,
            slow=True,
            ambient=True,
            rated_max=100,
        ),
    )


CNC = MachineModel(
    name="CNC-M200",
    kind="cnc_mill",
    firmwares=("3.2.1", "3.3.0"),
    rated_power_kw=22.0,
    sensors=(
        Sensor("spindle_speed_rpm", 0.0, 8000.0, 25.0, rated_max=12000),
        Sensor("spindle_load_pct", 2.0, 55.0, 1.2, rated_max=120),
        Sensor("spindle_power_kw", 0.4, 12.0, 0.25, rated_max=22),
        Sensor("spindle_temperature_c", 26.0, 44.0, 0.12, slow=True, ambient=True, rated_max=80),
        Sensor("vibration_x_mm_s", 0.3, 2.2, 0.12, rated_max=11),
        Sensor("vibration_y_mm_s", 0.3, 2.0, 0.12, rated_max=11),
        Sensor("vibration_z_mm_s", 0.2, 1.6, 0.10, rated_max=11),
        Sensor("feed_rate_mm_min", 0.0, 2400.0, 30.0, rated_max=10000),
        Sensor("axis_x_load_pct", 1.0, 32.0, 1.0, rated_max=120),
        Sensor("axis_y_load_pct", 1.0, 30.0, 1.0, rated_max=120),
        Sensor("axis_z_load_pct", 1.5, 38.0, 1.1, rated_max=120),
        Sensor("axis_x_temperature_c", 25.0, 35.0, 0.1, slow=True, ambient=True, rated_max=70),
        Sensor("axis_y_temperature_c", 25.0, 34.0, 0.1, slow=True, ambient=True, rated_max=70),
        Sensor("axis_z_temperature_c", 25.0, 36.0, 0.1, slow=True, ambient=True, rated_max=70),
        Sensor("coolant_pressure_bar", 0.1, 22.0, 0.25, rated_max=40),
        Sensor("coolant_temperature_c", 23.0, 27.0, 0.08, slow=True, ambient=True, rated_max=40),
        Sensor("coolant_flow_l_min", 0.0, 18.0, 0.3, rated_max=40),
        Sensor("hydraulic_pressure_bar", 55.0, 58.0, 0.4, rated_min=40, rated_max=80),
        *_three_phase("motor", 3.0, 28.0),
        *_cabinet(22.0),
        Sensor(
            "spindle_bearing_temperature_c",
            26.0,
            48.0,
            0.15,
            slow=True,
            ambient=True,
            rated_max=90,
            since_firmware="3.3.0",
        ),
    ),
    wear=(
        WearProcess(
            "spindle_bearing",
            "bearing_seizure",
            1 / 150,
            effects={
                "vibration_x_mm_s": 0.35,
                "vibration_y_mm_s": 0.30,
                "vibration_z_mm_s": 0.20,
                "spindle_temperature_c": 0.08,
                "spindle_bearing_temperature_c": 0.14,
                "spindle_power_kw": 0.04,
            },
            noise_effects={"vibration_x_mm_s": 1.2, "vibration_y_mm_s": 1.0},
        ),
        WearProcess(
            "cutting_tool",
            "tool_breakage",
            1 / 110,
            effects={
                "spindle_load_pct": 0.18,
                "spindle_power_kw": 0.14,
                "axis_z_load_pct": 0.15,
                "motor_current_l1_a": 0.08,
                "motor_current_l2_a": 0.08,
                "motor_current_l3_a": 0.08,
            },
            noise_effects={"spindle_load_pct": 0.8},
        ),
    ),
)

PRESS = MachineModel(
    name="PRS-H50",
    kind="hydraulic_press",
    firmwares=("1.4.0", "1.5.2"),
    rated_power_kw=37.0,
    sensors=(
        Sensor("hydraulic_pressure_bar", 12.0, 185.0, 1.5, rated_max=250),
        Sensor("ram_force_kn", 0.0, 480.0, 5.0, decimals=1, rated_max=500),
        Sensor("ram_position_mm", 2.0, 180.0, 1.0, decimals=1, rated_max=400),
        Sensor("ram_speed_mm_s", 0.0, 95.0, 1.5, decimals=1, rated_max=200),
        Sensor("oil_temperature_c", 30.0, 49.0, 0.1, slow=True, ambient=True, rated_max=70),
        Sensor("oil_level_pct", 78.0, 76.0, 0.25, rated_min=50, rated_max=100),
        Sensor("filter_differential_bar", 0.3, 1.4, 0.04, decimals=2, rated_max=5),
        Sensor("pump_flow_l_min", 4.0, 120.0, 1.5, rated_max=200),
        Sensor("pump_pressure_bar", 10.0, 192.0, 1.6, rated_max=250),
        Sensor("pump_vibration_mm_s", 0.4, 2.6, 0.12, rated_max=11),
        Sensor("motor_vibration_mm_s", 0.3, 1.9, 0.10, rated_max=11),
        Sensor("motor_temperature_c", 28.0, 55.0, 0.12, slow=True, ambient=True, rated_max=100),
        Sensor("cycle_time_s", 0.0, 11.5, 0.2, rated_max=60),
        Sensor("accumulator_pressure_bar", 90.0, 140.0, 1.0, rated_max=200),
        Sensor("valve_current_a", 0.1, 1.6, 0.02, decimals=2, rated_max=3),
        Sensor(
            "cooler_outlet_temperature_c", 27.0, 38.0, 0.1, slow=True, ambient=True, rated_max=60
        ),
        *_three_phase("motor", 5.0, 55.0),
        *_cabinet(37.0),
        Sensor("oil_particle_count_pct", 8.0, 9.0, 0.3, rated_max=100, since_firmware="1.5.2"),
    ),
    wear=(
        WearProcess(
            "hydraulic_pump",
            "pump_cavitation",
            1 / 140,
            effects={
                "pump_vibration_mm_s": 0.40,
                "pump_flow_l_min": -0.06,
                "oil_temperature_c": 0.07,
                "pump_pressure_bar": -0.04,
                "motor_current_l1_a": 0.06,
            },
            noise_effects={"pump_vibration_mm_s": 1.0, "pump_pressure_bar": 0.8},
        ),
        WearProcess(
            "oil_filter",
            "filter_clogging",
            1 / 120,
            effects={
                "filter_differential_bar": 0.45,
                "oil_temperature_c": 0.05,
                "pump_flow_l_min": -0.05,
                "oil_particle_count_pct": 0.9,
                "cycle_time_s": 0.05,
            },
        ),
    ),
)

INJECTION = MachineModel(
    name="INJ-X300",
    kind="injection_molder",
    firmwares=("5.0.7", "5.1.0"),
    rated_power_kw=30.0,
    sensors=(
        Sensor("barrel_zone1_temperature_c", 150.0, 215.0, 0.4, slow=True, rated_max=260),
        Sensor("barrel_zone2_temperature_c", 160.0, 225.0, 0.4, slow=True, rated_max=260),
        Sensor("barrel_zone3_temperature_c", 165.0, 232.0, 0.4, slow=True, rated_max=260),
        Sensor("nozzle_temperature_c", 170.0, 235.0, 0.5, slow=True, rated_max=270),
        Sensor("mold_temperature_c", 30.0, 62.0, 0.3, slow=True, ambient=True, rated_max=90),
        Sensor("injection_pressure_bar", 0.0, 1250.0, 12.0, rated_max=2000),
        Sensor("holding_pressure_bar", 0.0, 650.0, 8.0, rated_max=1200),
        Sensor("back_pressure_bar", 0.0, 85.0, 1.2, rated_max=200),
        Sensor("screw_speed_rpm", 0.0, 140.0, 2.0, rated_max=300),
        Sensor("screw_torque_pct", 1.0, 46.0, 1.0, rated_max=120),
        Sensor("clamp_force_kn", 0.0, 2800.0, 20.0, decimals=0, rated_max=3000),
        Sensor("cycle_time_s", 0.0, 28.0, 0.3, rated_max=120),
        Sensor("heater_current_a", 6.0, 22.0, 0.3, rated_max=40),
        Sensor(
            "hydraulic_oil_temperature_c", 30.0, 46.0, 0.1, slow=True, ambient=True, rated_max=65
        ),
        Sensor("cooling_water_flow_l_min", 12.0, 36.0, 0.4, rated_max=60),
        Sensor("cooling_water_temperature_c", 18.0, 23.0, 0.08, slow=True, rated_max=35),
        *_three_phase("pump_motor", 4.0, 42.0),
        *_cabinet(30.0),
        Sensor("screw_position_mm", 5.0, 95.0, 1.0, rated_max=200, since_firmware="5.1.0"),
    ),
    wear=(
        WearProcess(
            "heater_band",
            "heater_burnout",
            1 / 160,
            effects={
                "heater_current_a": -0.10,
                "barrel_zone2_temperature_c": -0.025,
                "barrel_zone3_temperature_c": -0.02,
                "cycle_time_s": 0.05,
            },
            noise_effects={"barrel_zone2_temperature_c": 3.0, "heater_current_a": 1.5},
        ),
        WearProcess(
            "check_ring",
            "screw_check_ring_wear",
            1 / 130,
            effects={
                "screw_torque_pct": 0.14,
                "injection_pressure_bar": 0.06,
                "cycle_time_s": 0.08,
                "back_pressure_bar": -0.10,
                "screw_position_mm": 0.12,
            },
            noise_effects={"injection_pressure_bar": 0.9},
        ),
    ),
)

MODELS: tuple[MachineModel, ...] = (CNC, PRESS, INJECTION)
STATUSES: tuple[str, ...] = ("RUN", "IDLE", "SETUP", "ALARM", "MAINT")
