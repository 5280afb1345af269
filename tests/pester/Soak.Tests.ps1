# The soak across processes: 10 separate pwsh processes, one after the other, each run 100 publish / republish /
# unpublish cycles through the cmdlets (cycling XDP, tc-ingress and nf-input). Afterwards the kernel holds none of
# the deployment's programs, maps or links, bpffs holds none of its pins, and no namespace is left once the sandbox
# is removed. Each process also reports its own open fds after its 10th cycle and after its last (both after a GC).
# Kernel objects, pins and namespaces are checked for this test's own (programs bf_CHAIN, maps c_CHAIN and
# bpfilter_mf, links of those programs; pins under its deployment; namespaces with its sandbox id) and printed as
# system-wide totals: other engineers' tests on this host may publish and make bpft-* sandboxes at the same time.
# The deployment's lock file (/run/lock/bpfilter/NAME.lock) is expected to remain: lock files are never deleted.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    $script:module = (Resolve-Path $module).Path
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
    # By assembly-qualified name: the engine lives in Bpfilter's own load context, where bare type literals do not look.
    $script:objects = [Bpfilter.Engine.Kernel.KernelObjects, Bpfilter.Engine]
    $script:root = '/sys/fs/bpf/bpfilter'
    $script:processes = 10
    $script:cycles = 100

    function Get-Snapshot { $objects::Snapshot($root) }

    # This deployment's kernel objects: programs bf_CHAIN, maps c_CHAIN and bpfilter_mf (manifests), links of those programs.
    function Get-Ours($Snapshot) {
        $programs = @($Snapshot.Programs | Where-Object Name -EQ "bf_$chain")
        $ids = $programs.Id
        @($programs) + @($Snapshot.Maps | Where-Object Name -In "c_$chain", 'bpfilter_mf') + @($Snapshot.Links | Where-Object { $_.ProgramId -in $ids })
    }

    # Ours that $Before did not have; the kernel frees programs and links after an RCU grace period and maps from a
    # work queue, so this waits (up to 10 s) for what was released to go.
    function Get-Leftover($Before) {
        $known = @($Before.Programs) + @($Before.Maps) + @($Before.Links) | ForEach-Object { "$($_.Kind) $($_.Id)" }
        $deadline = [datetime]::UtcNow.AddSeconds(10)
        while ($true) {
            $now = Get-Snapshot
            $left = @(Get-Ours $now | Where-Object { "$($_.Kind) $($_.Id)" -notin $known })
            if ($left.Count -eq 0 -or [datetime]::UtcNow -gt $deadline) { return [pscustomobject]@{ Snapshot = $now; Left = $left } }
            Start-Sleep -Milliseconds 50
        }
    }

    function Format-Counts($Snapshot, [string] $Title) {
        $namespaces = @($Snapshot.NetworkNamespaces | Where-Object { $_ -like 'bpft-*' }).Count
        '  {0,-26} programs {1,3}, maps {2,3}, links {3,3}, pins {4,3}, bpft-* namespaces {5}' -f $Title,
            $Snapshot.Programs.Count, $Snapshot.Maps.Count, $Snapshot.Links.Count, $Snapshot.Pins.Count, $namespaces
    }

    $script:initial = Get-Snapshot
    $script:sandbox = New-TestSandbox -Subnet 10.207.0
    $script:rx = $sandbox.Rx
    $script:name = "bpft-p$($sandbox.Id)"
    $script:chain = "SP$($sandbox.Id)"
    $script:lockFile = "/run/lock/bpfilter/$name.lock"

    # Per hook two versions whose one rule differs, so every republish changes the program (an update, not a no-op).
    $script:files = foreach ($hook in 'xdp', 'tc-ingress', 'nf-input') {
        foreach ($v in 0, 1) {
            $path = Join-Path $TestDrive "$hook-$v.yaml"
            $interface = if ($hook -eq 'nf-input') { '' } else { "`n    interface: $($sandbox.RxIf)" }
            @"
bpfilter: 1
name: $name
chains:
  - name: $chain
    hook: $hook$interface
    rules:
      - name: drop-$(1000 + $v)
        match: { protocol: udp, destination-port: $(1000 + $v) }
        action: drop
"@ | Set-Content $path
            $path
        }
    }

    # One publisher process: imports the six rulesets once, then runs its cycles, starting at hook $Offset.
    function Start-Cycler([int] $Offset) {
        $list = ($files | ForEach-Object { "'$_'" }) -join ','
        $script = @"
Import-Module '$module'; `$ErrorActionPreference = 'Stop'
`$objects = [Bpfilter.Engine.Kernel.KernelObjects, Bpfilter.Engine]
`$rulesets = @($list) | ForEach-Object { Import-BpfRuleset `$_ }
`$early = 0
for (`$c = 0; `$c -lt $cycles; `$c++) {
    `$h = (`$c + $Offset) % 3
    `$first = `$rulesets[2 * `$h] | Publish-BpfProgram -NetworkNamespace '$rx'
    `$second = `$rulesets[2 * `$h + 1] | Publish-BpfProgram -NetworkNamespace '$rx'
    if (`$first.Generation -ne 1 -or `$second.Generation -ne 2) { throw "cycle `${c}: generations `$(`$first.Generation), `$(`$second.Generation)" }
    Unpublish-BpfProgram -Name '$name'
    if (`$c -eq 9) { [GC]::Collect(); [GC]::WaitForPendingFinalizers(); `$early = `$objects::OpenFileDescriptorCount() }
}
[GC]::Collect(); [GC]::WaitForPendingFinalizers()
"fds `$early `$(`$objects::OpenFileDescriptorCount())"
"@
        $info = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        foreach ($a in 'pwsh', '-NoProfile', '-NonInteractive', '-Command', $script) { $info.ArgumentList.Add($a) }
        $info.WorkingDirectory = $repo
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        [System.Diagnostics.Process]::Start($info)
    }
}

AfterAll {
    if (Test-Path "$root/$name") { Unpublish-BpfProgram -Name $name -ErrorAction Continue }
    Remove-TestSandbox $sandbox
}

Describe 'Publish, republish and unpublish in many processes' {
    It 'leaves no program, map, link or pin of the deployment, nor an fd in any publisher' {
        $before = Get-Snapshot
        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        $reports = foreach ($p in 1..$processes) {
            $process = Start-Cycler -Offset ($p % 3)
            # Read both streams to the end before waiting, so neither pipe can fill and stall the child.
            $stderr = $process.StandardError.ReadToEndAsync()
            $stdout = $process.StandardOutput.ReadToEnd()
            $process.WaitForExit()
            $stderr.Result | Should -BeNullOrEmpty -Because "publisher $p must not fail"
            $process.ExitCode | Should -Be 0 -Because "publisher $p must not fail"
            $line = @($stdout -split "`n" | Where-Object { $_ -like 'fds *' })[-1]
            $line | Should -Not -BeNullOrEmpty -Because "publisher $p reports its fds (output: $stdout)"
            $early, $late = $line.Trim().Split(' ')[1, 2] | ForEach-Object { [int]$_ }
            [pscustomobject]@{ Process = $p; FdsAfter10 = $early; FdsAtEnd = $late }
        }
        $elapsed = $clock.Elapsed
        $after = Get-Leftover $before

        Write-Host ("  {0} processes x {1} cycles (publish, republish, unpublish) in {2:0.0} s" -f $processes, $cycles, $elapsed.TotalSeconds)
        Write-Host (Format-Counts $initial 'before the sandbox:')
        Write-Host (Format-Counts $before 'before the processes:')
        Write-Host (Format-Counts $after.Snapshot 'after the processes:')
        Write-Host "  publisher fds after cycle 10 -> at the end: $(($reports | ForEach-Object { '{0}->{1}' -f $_.FdsAfter10, $_.FdsAtEnd }) -join ', ')"
        Write-Host "  lock file $lockFile $(if (Test-Path $lockFile) { 'remains, as expected' } else { 'is gone' })"

        $after.Left | ForEach-Object ToString | Should -BeNullOrEmpty -Because 'no program, map or link of the deployment may remain'
        "$root/$name" | Should -Not -Exist
        $after.Snapshot.Pins | Where-Object { $_ -eq $name -or $_ -like "$name/*" } | Should -BeNullOrEmpty
        # The publishers make no namespace: ours are the sandbox's two, still there until the next test removes them.
        ($after.Snapshot.NetworkNamespaces | Where-Object { $_ -like "*$($sandbox.Id)*" }) -join ', ' | Should -Be "$($sandbox.Rx), $($sandbox.Tx)"
        foreach ($r in $reports) {
            # Some runs see two more fds in a few publishers, once, never growing (likely .NET opening its socket engine, an
            # epoll fd and an eventfd, lazily; not yet confirmed): two
            # more fds at most, whatever the number of cycles; a leak would grow by one or more every cycle (90 here).
            $r.FdsAtEnd | Should -BeLessOrEqual ($r.FdsAfter10 + 2) -Because "publisher $($r.Process) must close every fd it opens"
        }
    }

    It 'leaves no namespace of the sandbox once it is removed, nor any object or pin of the deployment' {
        Remove-TestSandbox $sandbox
        $final = Get-Leftover $initial
        Write-Host (Format-Counts $final.Snapshot 'after removing the sandbox:')
        $final.Left | ForEach-Object ToString | Should -BeNullOrEmpty
        $final.Snapshot.NetworkNamespaces | Where-Object { $_ -like "*$($sandbox.Id)*" } | Should -BeNullOrEmpty
        $final.Snapshot.Pins | Where-Object { $_ -eq $name -or $_ -like "$name/*" } | Should -BeNullOrEmpty
    }
}
