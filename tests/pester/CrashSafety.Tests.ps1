# A publisher killed at any instant, and two publishers at once: afterwards there is exactly one whole
# deployment, it filters, and the next publish works. The publishers are separate pwsh processes.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    $script:module = (Resolve-Path $module).Path
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
    $script:sandbox = New-TestSandbox -Subnet 10.204.0
    $script:rx = $sandbox.Rx; $script:rxIf = $sandbox.RxIf
    $script:name = "bpft-k$($sandbox.Id)"

    # Two versions that both drop UDP 9999; each has one rule of its own, so every publish changes the program.
    foreach ($v in 'a', 'b') {
        @"
bpfilter: 1
name: $name
chains:
  - name: INPUT
    hook: tc-ingress
    interface: $rxIf
    rules:
      - name: only-in-$v
        match: { protocol: udp, destination-port: $(if ($v -eq 'a') { 1001 } else { 1002 }) }
        action: drop
      - name: drop-9999
        match: { protocol: udp, destination-port: 9999 }
        action: drop
"@ | Set-Content "$TestDrive/$v.yaml"
    }

    function Start-Publisher([string] $Script) {
        $info = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        foreach ($a in 'pwsh', '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$module'; `$ErrorActionPreference = 'Stop'; $Script") { $info.ArgumentList.Add($a) }
        $info.WorkingDirectory = $repo
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        [System.Diagnostics.Process]::Start($info)
    }

    function Get-ProcessTree([int] $Id) {
        $Id
        foreach ($child in (Get-Content "/proc/$Id/task/*/children" -ErrorAction Ignore) -split ' ' | Where-Object { $_ }) { Get-ProcessTree ([int]$child) }
    }

    # One whole deployment: a manifest, no plan left over, every pin the manifest lists and nothing else, attached.
    function Assert-WholeDeployment {
        $chain = Get-BpfChain -Name $name
        @($chain).Count | Should -Be 1
        $chain.State | Should -Be 'Attached'
        $chain.Rules[1].Name | Should -Be 'drop-9999'
        "/sys/fs/bpf/bpfilter/$name/manifest-next" | Should -Not -Exist
        $pins = Get-ChildItem "/sys/fs/bpf/bpfilter/$name" | ForEach-Object Name
        $pins | Should -Contain 'manifest'
        ($pins | Where-Object { $_ -like 'INPUT-link-*' }).Count | Should -Be 1
        ($pins | Where-Object { $_ -like 'INPUT-prog-*' }).Count | Should -Be 1
        ($pins | Where-Object { $_ -like 'INPUT-counters-*' }).Count | Should -Be 1
        $before = (Get-BpfCounter -Name $name | Where-Object Rule -EQ 'drop-9999').Packets
        Send-TestUdp $sandbox -Port 9999 -Count 3
        (Get-BpfCounter -Name $name | Where-Object Rule -EQ 'drop-9999').Packets | Should -Be ($before + 3)
    }
}

AfterAll {
    if (Test-Path "/sys/fs/bpf/bpfilter/$name") { Unpublish-BpfProgram -Name $name -ErrorAction Continue }
    Remove-TestSandbox $sandbox
}

Describe 'A publisher killed at a random moment' {
    It 'leaves one whole deployment that filters, 20 times in a row, and the next publish works' {
        Import-BpfRuleset "$TestDrive/a.yaml" | Publish-BpfProgram -NetworkNamespace $rx | Out-Null
        $random = [System.Random]::new(20261201)
        $outcomes = foreach ($trial in 1..20) {
            $p = Start-Publisher "while (`$true) { foreach (`$v in 'a','b') { Import-BpfRuleset `"$TestDrive/`$v.yaml`" | Publish-BpfProgram -NetworkNamespace $rx | Out-Null; 'published' } }"
            # Wait for the first publish, so PowerShell has started, then kill somewhere inside the publishing loop.
            $first = $p.StandardOutput.ReadLine()
            if ($first -ne 'published') { $p.WaitForExit(); throw "the publisher failed: $($p.StandardError.ReadToEnd())" }
            Start-Sleep -Milliseconds $random.Next(0, 120)
            # dotnet runs the pwsh tool as a grandchild: kill the whole tree and wait until every one of them is gone.
            $tree = Get-ProcessTree $p.Id
            $p.Kill($true)
            foreach ($id in $tree) { while (Test-Path "/proc/$id") { Start-Sleep -Milliseconds 10 } }
            $leftPlan = Test-Path "/sys/fs/bpf/bpfilter/$name/manifest-next"
            $leftPins = (Get-ChildItem "/sys/fs/bpf/bpfilter/$name").Count -gt 4
            Assert-WholeDeployment
            '{0}{1}' -f (Get-BpfChain -Name $name).Rules[0].Name, $(if ($leftPlan) { ' after roll-forward' } elseif ($leftPins) { ' after sweeping an unfinished generation' })
        }
        Import-BpfRuleset "$TestDrive/b.yaml" | Publish-BpfProgram -NetworkNamespace $rx | ForEach-Object Generation | Should -BeGreaterThan 40
        Assert-WholeDeployment
        Write-Host "  kill outcomes (the version left deployed): $(($outcomes | Group-Object | ForEach-Object { '{0} x{1}' -f $_.Name, $_.Count }) -join ', ')"
    }
}

Describe 'Two publishers of one name at once' {
    It 'both finish, and the result is one of them whole' {
        $a = Start-Publisher "Import-BpfRuleset '$TestDrive/a.yaml' | Publish-BpfProgram -NetworkNamespace $rx | Out-Null; 'done'"
        $b = Start-Publisher "Import-BpfRuleset '$TestDrive/b.yaml' | Publish-BpfProgram -NetworkNamespace $rx | Out-Null; 'done'"
        foreach ($p in $a, $b) {
            $p.WaitForExit()
            $p.StandardError.ReadToEnd() | Should -BeNullOrEmpty
            $p.ExitCode | Should -Be 0
        }
        Assert-WholeDeployment
        (Get-BpfChain -Name $name).Rules[0].Name | Should -BeIn 'only-in-a', 'only-in-b'
    }
}
