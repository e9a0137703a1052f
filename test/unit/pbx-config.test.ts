/**
 * The Asterisk configuration: committed files include exactly the generated files both
 * renderers write; the sandbox renderer (src/pbx/config-render.ts) and the docker entrypoint
 * (docker/asterisk/entrypoint.sh) write the same files with the same sections; no secret is
 * committed; asterisk.conf's [directories] is rewritten per instance.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  GENERATED_FILES,
  SANDBOX_ONLY_FILES,
  installConfig,
  renderAsteriskConf,
  renderGeneratedConfigs,
  replaceSection,
} from '../../src/pbx/config-render.js';
import { ASTERISK_CONFIG_DIR, REPO_ROOT, instancePaths } from '../../src/pbx/paths.js';
import { buildCredentials } from '../../src/pbx/secrets.js';
import type { PbxPorts } from '../../src/pbx/options.js';

const execFileP = promisify(execFile);
const ENTRYPOINT = join(REPO_ROOT, 'docker/asterisk/entrypoint.sh');
const ports: PbxPorts = { sip: 25999, http: 28999, ami: 25998, rtpStart: 40000, rtpEnd: 40999 };
const creds = buildCredentials('unit', '127.0.0.1', ports, undefined);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-pbx-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function committed(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(ASTERISK_CONFIG_DIR)).filter((f) => f.endsWith('.conf'))) {
    out[f] = await readFile(join(ASTERISK_CONFIG_DIR, f), 'utf8');
  }
  return out;
}

/** Section headers and, per section, the option names of an Asterisk config text. */
function shape(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/;.*$/, '').trim();
    if (!line) continue;
    const header = /^\[([^\]]+)\](\([^)]*\))?/.exec(line);
    if (header) out.push(`[${header[1]}]${header[2] ?? ''}`);
    else out.push(line.split(/\s*=>?\s*/)[0]!);
  }
  return out;
}

async function dockerRender(env: Record<string, string>): Promise<{ code: number; stderr: string; files: Record<string, string> }> {
  const dest = await mkdtemp(join(dir, 'docker-'));
  try {
    await execFileP('sh', [ENTRYPOINT, '--render-only', dest], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '', files: {} };
  }
  const files: Record<string, string> = {};
  for (const f of await readdir(join(dest, 'generated'))) files[`generated/${f}`] = await readFile(join(dest, 'generated', f), 'utf8');
  return { code: 0, stderr: '', files };
}

const DOCKER_ENV = {
  ARI_PASSWORD: 'AriPassword-0123456789',
  AMI_SECRET: 'AmiSecret-0123456789',
  SIP_6001_PASSWORD: 'Sip6001Password-0123',
  SIP_6002_PASSWORD: 'Sip6002Password-0123',
  SIP_7000_PASSWORD: 'Sip7000Password-0123',
};

describe('sandbox renderer', () => {
  test('renders every generated file with the instance ports, loopback binds and secrets', () => {
    const files = renderGeneratedConfigs({ bindAddress: '127.0.0.1', ports, credentials: creds });
    expect(Object.keys(files).sort()).toEqual([...GENERATED_FILES, ...SANDBOX_ONLY_FILES].sort());
    expect(files['generated/http.conf']).toMatch(/^bindaddr = 127\.0\.0\.1$/m);
    expect(files['generated/http.conf']).toMatch(/^bindport = 28999$/m);
    expect(files['generated/manager-general.conf']).toMatch(/^port = 25998$/m);
    expect(files['generated/pjsip-transports.conf']).toMatch(/^bind = 127\.0\.0\.1:25999$/m);
    expect(files['generated/pjsip-transports.conf']).toMatch(/^media_address = 127\.0\.0\.1$/m);
    expect(files['generated/rtp.conf']).toMatch(/^rtpstart = 40000$/m);
    expect(files['generated/rtp.conf']).toMatch(/^rtpend = 40999$/m);
    expect(files['generated/ari.conf']).toContain(`password = ${creds.ari_password}`);
    expect(files['generated/manager-users.conf']).toContain(`secret = ${creds.ami.secret}`);
    expect(files['generated/manager-users.conf']).toMatch(/^permit = 127\.0\.0\.1\/255\.255\.255\.255$/m);
    for (const a of creds.sip.accounts) expect(files['generated/pjsip-auth.conf']).toContain(`[${a.auth}](+)\npassword = ${a.password}\n`);
    // Loopback callers without auth: sandbox only, identified by IP 127.0.0.1.
    expect(files['generated/pjsip-local.conf']).toMatch(/^match = 127\.0\.0\.1$/m);
    expect(files['generated/pjsip-local.conf']).toMatch(/^context = from-internal$/m);
  });

  test('committed files #include exactly the generated files; sandbox-only ones with #tryinclude', async () => {
    const includes = new Set<string>();
    const tryincludes = new Set<string>();
    for (const text of Object.values(await committed())) {
      for (const m of text.matchAll(/^#(include|tryinclude)\s+"?(generated\/[^"\s]+)"?/gm)) {
        (m[1] === 'include' ? includes : tryincludes).add(m[2]!);
      }
    }
    expect([...includes].sort()).toEqual([...GENERATED_FILES].sort());
    for (const f of SANDBOX_ONLY_FILES) expect(tryincludes).toContain(f);
    // The docker-only trunk file is optional too.
    expect(tryincludes).toContain('generated/pjsip-trunk.conf');
  });

  test('no secret and no sandbox-only endpoint in the committed configuration', async () => {
    for (const [file, text] of Object.entries(await committed())) {
      expect(text, file).not.toMatch(/^\s*(password|secret|md5_cred)\s*=\s*\S/m);
      expect(text, file).not.toMatch(/^\s*match\s*=\s*127\./m);
    }
  });

  test('asterisk.conf: a real [directories] section, rewritten with the instance paths', async () => {
    const text = (await committed())['asterisk.conf']!;
    expect(text).toMatch(/^\[directories\]\s*$/m);
    expect(text).not.toMatch(/^\[directories\]\(/m);
    const paths = instancePaths('/cache/asterisk-rootfs', 'unit');
    const rendered = renderAsteriskConf(text, paths.dirs);
    expect(rendered).toMatch(/^astetcdir => \/srv\/switchboard\/unit\/etc$/m);
    expect(rendered).toMatch(/^astrundir => \/srv\/switchboard\/unit\/run$/m);
    expect(rendered).toMatch(/^astlogdir => \/srv\/switchboard\/unit\/log$/m);
    expect(rendered).not.toMatch(/^astetcdir => \/etc\/asterisk$/m);
    expect(rendered.match(/^\[directories\]/gm)).toHaveLength(1);
    // [options] untouched.
    const options = (t: string): string => t.slice(t.search(/^\[options\]/m));
    expect(options(rendered)).toBe(options(text));
  });

  test('replaceSection replaces a template header, keeps following comments, adds a missing section', () => {
    const text = '; head\n[directories](!)\nastetcdir => /etc/asterisk\n\n; about options\n[options]\nverbose = 3\n';
    const out = replaceSection(text, 'directories', [['astetcdir', '/x']]);
    expect(out).toBe('; head\n[directories]\nastetcdir => /x\n\n; about options\n[options]\nverbose = 3\n');
    expect(replaceSection('[options]\na = 1\n', 'directories', [['k', 'v']])).toBe('[directories]\nk => v\n\n[options]\na = 1\n');
  });

  test('installConfig writes the committed files, the instance asterisk.conf and generated/', async () => {
    const dest = join(dir, 'etc');
    const paths = instancePaths('/cache/asterisk-rootfs', 'unit');
    const written = await installConfig({
      sourceDir: ASTERISK_CONFIG_DIR,
      destDir: dest,
      directories: paths.dirs,
      bindAddress: '127.0.0.1',
      ports,
      credentials: creds,
    });
    const sources = Object.keys(await committed());
    expect(written.sort()).toEqual([...sources, ...GENERATED_FILES, ...SANDBOX_ONLY_FILES].sort());
    expect(await readFile(join(dest, 'pjsip.conf'), 'utf8')).toBe((await committed())['pjsip.conf']);
    expect(await readFile(join(dest, 'asterisk.conf'), 'utf8')).toMatch(/^astetcdir => \/srv\/switchboard\/unit\/etc$/m);
  });
});

describe('docker entrypoint (--render-only)', () => {
  test('writes the same generated files, with the same sections and options, as the sandbox', async () => {
    const r = await dockerRender(DOCKER_ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(r.files).sort()).toEqual([...GENERATED_FILES].sort());
    const sandbox = renderGeneratedConfigs({ bindAddress: '127.0.0.1', ports, credentials: creds });
    for (const f of GENERATED_FILES) {
      if (f === 'generated/pjsip-transports.conf') {
        // Same objects; the sandbox's media-address template adds loopback RTP binding.
        expect(shape(r.files[f]!).filter((l) => l.startsWith('['))).toEqual(shape(sandbox[f]!).filter((l) => l.startsWith('[')));
      } else {
        expect(shape(r.files[f]!), f).toEqual(shape(sandbox[f]!));
      }
    }
    expect(r.files['generated/ari.conf']).toContain(`password = ${DOCKER_ENV.ARI_PASSWORD}`);
    expect(r.files['generated/pjsip-auth.conf']).toContain(`[auth-7000](+)\npassword = ${DOCKER_ENV.SIP_7000_PASSWORD}`);
    expect(r.files['generated/http.conf']).toMatch(/^bindaddr = 127\.0\.0\.1$/m);
    expect(r.files['generated/pjsip-transports.conf']).toMatch(/^bind = 0\.0\.0\.0:5060$/m);
  });

  test('behind NAT and with a trunk: external addresses, local nets and the trunk objects', async () => {
    const r = await dockerRender({
      ...DOCKER_ENV,
      EXTERNAL_IP: '203.0.113.7',
      LOCAL_NET: '10.0.0.0/8,192.168.0.0/16',
      TRUNK_HOST: 'sip.example.net',
      TRUNK_USERNAME: 'acme',
      TRUNK_PASSWORD: 'TrunkPassword-0123',
    });
    expect(r.code, r.stderr).toBe(0);
    const t = r.files['generated/pjsip-transports.conf']!;
    expect(t).toMatch(/^external_media_address = 203\.0\.113\.7$/m);
    expect(t.match(/^local_net = /gm)).toHaveLength(2);
    const trunk = r.files['generated/pjsip-trunk.conf']!;
    expect(shape(trunk).filter((l) => l.startsWith('['))).toEqual([
      '[trunk](trunk-endpoint)',
      '[trunk-outbound-auth](trunk-auth)',
      '[trunk](trunk-aor)',
      '[trunk](trunk-identify)',
      '[trunk-reg](trunk-registration)',
    ]);
    expect(trunk).toContain('password = TrunkPassword-0123');
  });

  for (const missing of Object.keys(DOCKER_ENV)) {
    test(`refuses to start without ${missing}`, async () => {
      const env: Record<string, string> = { ...DOCKER_ENV };
      delete env[missing];
      const r = await dockerRender(env);
      expect(r.code).toBe(78);
      expect(r.stderr).toContain(missing);
    });
  }

  test('refuses weak or unsafe secrets, bad ports and a trunk without credentials', async () => {
    expect((await dockerRender({ ...DOCKER_ENV, ARI_PASSWORD: 'short' })).stderr).toMatch(/ARI_PASSWORD is too short/);
    expect((await dockerRender({ ...DOCKER_ENV, AMI_SECRET: 'has;semicolon-0123456789' })).stderr).toMatch(/AMI_SECRET contains/);
    expect((await dockerRender({ ...DOCKER_ENV, SIP_6001_PASSWORD: 'line\nbreak-0123456789' })).code).toBe(78);
    expect((await dockerRender({ ...DOCKER_ENV, SIP_PORT: '50x' })).stderr).toMatch(/SIP_PORT must be a port number/);
    expect((await dockerRender({ ...DOCKER_ENV, RTP_START: '20000', RTP_END: '10000' })).stderr).toMatch(/RTP_START/);
    expect((await dockerRender({ ...DOCKER_ENV, TRUNK_HOST: 'sip.example.net' })).stderr).toMatch(/TRUNK_USERNAME and TRUNK_PASSWORD/);
  });
});
