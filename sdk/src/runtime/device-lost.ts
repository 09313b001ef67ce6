/** Device loss: turn `GPUDevice.lost` into a {@link DeviceLostError} callback, ignoring losses we cause ourselves (dispose). */
import { DeviceLostError } from "../errors/runtime.js";
export { DeviceLostError } from "../errors/runtime.js";

export interface DeviceLossWatch {
  /** Call before destroying the device yourself: the loss that follows is not reported. */
  expect(): void;
  /** Stop watching. */
  stop(): void;
  /** The loss, once it happened (and was not expected). */
  readonly lost: DeviceLostError | null;
}

/** Report `device.lost` (unless {@link DeviceLossWatch.expect}ed) as a {@link DeviceLostError}. */
export function watchDeviceLost(device: GPUDevice, onLost: (err: DeviceLostError) => void): DeviceLossWatch {
  let active = true;
  let lost: DeviceLostError | null = null;
  const lostPromise = (device as { lost?: Promise<GPUDeviceLostInfo> }).lost;
  lostPromise?.then(
    (info) => {
      if (!active) return;
      active = false;
      lost = new DeviceLostError(String(info?.reason ?? "unknown"), String(info?.message ?? ""));
      onLost(lost);
    },
    () => {},
  );
  return {
    expect() {
      active = false;
    },
    stop() {
      active = false;
    },
    get lost() {
      return lost;
    },
  };
}
