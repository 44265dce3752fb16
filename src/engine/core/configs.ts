/**
 * The diffusers configs every flow-matching family reads the same way: the scheduler's, the
 * transformer's integer fields, and the VAE's. Each check names the file, the field and the fix.
 */
import { modelError } from '../errors';
import type { FamilyContext } from './family';

export const isPosInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;
export const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

export type Need = (cond: boolean, what: string) => asserts cond;

/** A checker whose errors say which family's model is invalid and how to fix it. */
export function checker(family: string, fix: string): Need {
  return (cond, what) => {
    if (!cond) throw modelError(`Invalid ${family} model: ${what}.`, fix);
  };
}

export async function readSchedulerConfig(ctx: FamilyContext, need: Need) {
  const sch = await ctx.readJson<{ _class_name: string; num_train_timesteps: unknown; shift: unknown }>('scheduler', 'scheduler_config.json');
  need(sch._class_name === 'FlowMatchEulerDiscreteScheduler', `scheduler "${sch._class_name}" is not FlowMatchEulerDiscreteScheduler`);
  need(isNum(sch.shift) && sch.shift > 0 && isPosInt(sch.num_train_timesteps), 'scheduler_config.json needs "shift" > 0 and integer "num_train_timesteps"');
  return { shift: sch.shift, numTrainTimesteps: sch.num_train_timesteps };
}

/** A component's config with these fields checked as positive integers. */
export async function readIntConfig<K extends string>(ctx: FamilyContext, need: Need, component: string, keys: readonly K[]) {
  const c = await ctx.readJson<Record<string, unknown>>(component);
  for (const k of keys) need(isPosInt(c[k]), `${component}/config.json "${k}" must be a positive integer (got ${JSON.stringify(c[k])})`);
  return c as Record<K, number> & Record<string, unknown>;
}

/** The VAE's latent normalisation and scale factor (2 ** (len(block_out_channels) - 1), as diffusers). */
export async function readVaeConfig(ctx: FamilyContext, need: Need, latentChannels: number) {
  const vc = await ctx.readJson<{ latent_channels: unknown; block_out_channels: unknown; scaling_factor: unknown; shift_factor?: unknown }>('vae_decoder');
  need(vc.latent_channels === latentChannels, `vae_decoder latent_channels (${JSON.stringify(vc.latent_channels)}) must equal the transformer's in_channels (${latentChannels})`);
  need(Array.isArray(vc.block_out_channels) && vc.block_out_channels.length > 0, 'vae_decoder/config.json needs "block_out_channels"');
  need(isNum(vc.scaling_factor) && vc.scaling_factor !== 0, 'vae_decoder/config.json needs a non-zero "scaling_factor"');
  need(vc.shift_factor === undefined || vc.shift_factor === null || isNum(vc.shift_factor), 'vae_decoder/config.json "shift_factor" must be a number');
  return {
    scaleFactor: 2 ** ((vc.block_out_channels as unknown[]).length - 1),
    scalingFactor: vc.scaling_factor,
    shiftFactor: isNum(vc.shift_factor) ? vc.shift_factor : 0,
  };
}
