//go:build !linux

package bench

import (
	"os"
	"syscall"
	"time"
)

// Outside Linux the harness runs its processes without /proc: no CPU time
// over the window, no machine load, no peak memory.

func childAttr() *syscall.SysProcAttr   { return nil }
func procCPU(int) time.Duration         { return 0 }
func readMachineCPU() machineCPU        { return machineCPU{} }
func readLoad() [3]float64              { return [3]float64{} }
func maxRSSMB(*os.ProcessState) float64 { return 0 }
