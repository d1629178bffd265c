/**
 * Runs the built binary on a real pseudo-terminal (Python's pty module: stdin and stdout are TTYs, as in a
 * terminal), answering prompts: each step waits until `expect` appears in the output, then types `send`.
 */
import { spawn } from 'node:child_process'
import { BIN } from './cli.js'

const DRIVER = `
import fcntl, json, os, pty, re, select, struct, sys, termios, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.chdir(spec['cwd'])
    os.execvpe(spec['argv'][0], spec['argv'], spec['env'])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))  # a real terminal has a size
out = b''
steps = spec['steps']
deadline = time.time() + spec['timeout']
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if steps and re.search(steps[0][0], out.decode('utf8', 'replace')):
        time.sleep(0.15)
        os.write(fd, steps.pop(0)[1].encode())
        out += b'\\n<<sent>>\\n'
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'code': os.waitstatus_to_exitcode(status), 'output': out.decode('utf8', 'replace')[-20000:], 'pending': [s[0] for s in steps]}))
`

export interface TtyRun { code: number; output: string; pending: string[] }

export function runOnTty(args: string[], opts: { cwd: string; env?: Record<string, string | undefined>; steps: [expect: string, send: string][]; timeoutMs?: number }): Promise<TtyRun> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: '1', TERM: 'xterm', ...opts.env })) if (v !== undefined) env[k] = v
  const spec = { argv: [process.execPath, BIN, ...args], cwd: opts.cwd, env, steps: opts.steps, timeout: (opts.timeoutMs ?? 30_000) / 1000 }
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['-c', DRIVER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('close', () => {
      try {
        resolve(JSON.parse(stdout) as TtyRun)
      } catch {
        reject(new Error(`tty driver failed: ${stderr}`))
      }
    })
  })
}
