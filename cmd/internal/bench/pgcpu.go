package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PostgreSQL's own CPU over a run on this machine: the postmaster and
// every server process, living (their own time) or ended (their time the
// postmaster reaped). It counts whatever else uses the server over the
// same span, and is not read across a restart of PostgreSQL.

// procStat returns a process's command name, parent and its own and its
// reaped children's CPU seconds.
func procStat(pid int) (comm string, ppid int, self, children float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, 0, err
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, 0, 0, fmt.Errorf("bench: unreadable /proc stat")
	}
	f := strings.Fields(string(b[end+2:]))
	if len(f) < 15 {
		return "", 0, 0, 0, fmt.Errorf("bench: short /proc stat")
	}
	ppid, _ = strconv.Atoi(f[1])
	var t [4]float64
	for i := range t {
		t[i], _ = strconv.ParseFloat(f[11+i], 64)
	}
	return string(b[open+1 : end]), ppid, (t[0] + t[1]) / 100, (t[2] + t[3]) / 100, nil
}

// postgresCPU returns the postmaster's pid and the CPU seconds PostgreSQL
// has spent so far (0 when no postmaster is found).
func postgresCPU() (int, float64) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	type proc struct {
		ppid        int
		self, child float64
	}
	procs := map[int]proc{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		comm, ppid, self, child, err := procStat(pid)
		if err != nil || comm != "postgres" {
			continue
		}
		procs[pid] = proc{ppid, self, child}
	}
	for pid, p := range procs {
		if _, ok := procs[p.ppid]; ok {
			continue // a server process; its postmaster is pid's parent
		}
		total := p.self + p.child
		for _, c := range procs {
			if c.ppid == pid {
				total += c.self
			}
		}
		return pid, total
	}
	return 0, 0
}
