# Every cmdlet in a pwsh process without the privileges it needs: each that touches the kernel fails with one
# Bpfilter.PrivilegeMissing error (PermissionDenied) naming exactly what is missing, each that does not still works,
# and the deployment they were pointed at is left as it was. The children run as root with capabilities dropped
# (setpriv --bounding-set) and as user nobody. The module comes from $env:BPFILTER_MODULE (set by build.ps1 Test),
# or from out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeDiscovery {
    $script:hasSetpriv = $IsLinux -and $null -ne (Get-Command setpriv -ErrorAction Ignore)
}

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    $script:module = (Resolve-Path $module).Path
    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
    $script:sandbox = New-TestSandbox -Subnet 10.207.0
    $script:name = "bpft-p$($sandbox.Id)"
    $script:yaml = Join-Path $TestDrive 'web.yaml'
    @"
bpfilter: 1
name: $name
chains:
  - name: INPUT
    hook: tc-ingress
    interface: $($sandbox.RxIf)
    rules:
      - name: no-telnet
        match: { protocol: tcp, destination-port: 23 }
        action: drop
"@ | Set-Content $yaml
    $script:published = Import-BpfRuleset $yaml | Publish-BpfProgram -NetworkNamespace $sandbox.Rx

    # Each probe runs one cmdlet and writes 'PROBE|<name>|<objects>|<errors>|<first error id>|<category>|<message>'.
    $script:probe = Join-Path $TestDrive 'probe.ps1'
    @'
param($Module, $Yaml, $Name, $Namespace)
Import-Module $Module
$ruleset = Import-BpfRuleset $Yaml
$probes = [ordered]@{
    'Import-BpfRuleset'              = { Import-BpfRuleset $Yaml }
    'New-BpfRule'                    = { New-BpfRule -Protocol udp -DestinationPort 53 -Action accept }
    'Get-BpfChain -Ruleset'          = { $ruleset | Get-BpfChain }
    'Test-BpfPacket'                 = { Test-BpfPacket -Ruleset $ruleset -Protocol tcp -DestinationPort 23 }
    'Show-BpfProgram -Ruleset'       = { $ruleset | Show-BpfProgram }
    'Publish-BpfProgram'             = { $ruleset | Publish-BpfProgram -NetworkNamespace $Namespace }
    'Unpublish-BpfProgram'           = { Unpublish-BpfProgram -Name $Name -Confirm:$false }
    'Get-BpfCounter'                 = { Get-BpfCounter -Name $Name }
    'Get-BpfProgram'                 = { Get-BpfProgram -Name $Name }
    'Get-BpfChain'                   = { Get-BpfChain -Name $Name }
    'Compare-BpfRuleset'             = { $ruleset | Compare-BpfRuleset -IncludeEqual }
    'Test-BpfPacket -Kernel'         = { Test-BpfPacket -Ruleset $ruleset -Protocol tcp -DestinationPort 23 -Kernel }
    'Show-BpfProgram -Name'          = { Show-BpfProgram -Name $Name }
    'Get-BpfSet'                     = { Get-BpfSet -Name $Name }
    'Get-BpfLog'                     = { Get-BpfLog -Name $Name }
    'Invoke-BpfIptables -L'          = { Invoke-BpfIptables -Name $Name -- -L -n }
    'Invoke-BpfIptables -A'          = { Invoke-BpfIptables -Name $Name -NetworkNamespace $Namespace -Confirm:$false -- -A INPUT -p udp -j DROP }
}
foreach ($probe in $probes.GetEnumerator()) {
    # Non-terminating errors come through 2>&1, a terminating one through catch.
    $output = @(try { & $probe.Value 2>&1 } catch { $_ })
    $errors = @($output | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
    $objects = @($output | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] })
    $first = $errors | Select-Object -First 1
    'PROBE|{0}|{1}|{2}|{3}|{4}|{5}' -f $probe.Key, $objects.Count, $errors.Count, $first.FullyQualifiedErrorId, $first.CategoryInfo.Category, $first.Exception.Message
}
'@ | Set-Content $probe
    $script:probeCount = [regex]::Matches((Get-Content $probe -Raw), "(?m)^    '[^']+'\s+= \{").Count

    # Starts the probes in a new pwsh behind a command prefix; Receive-Probes returns what they report, by cmdlet.
    # pwsh.dll itself is run (not 'dotnet pwsh', which needs the tool manifest and a NuGet cache of the user's own).
    function Start-Probes([string[]] $Prefix) {
        $info = [System.Diagnostics.ProcessStartInfo]::new($Prefix[0])
        foreach ($a in @($Prefix | Select-Object -Skip 1) + @('dotnet', (Join-Path $PSHOME 'pwsh.dll'), '-NoProfile', '-NonInteractive',
                '-File', $probe, '-Module', $module, '-Yaml', $yaml, '-Name', $name, '-Namespace', $sandbox.Rx)) { $info.ArgumentList.Add($a) }
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        [System.Diagnostics.Process]::Start($info)
    }

    function Receive-Probes([System.Diagnostics.Process] $Process) {
        $errors = $Process.StandardError.ReadToEndAsync()
        $out = $Process.StandardOutput.ReadToEnd() -split "`n"
        $Process.WaitForExit()
        $results = @{}
        foreach ($line in @($out | Where-Object { $_ -like 'PROBE|*' })) {
            $f = $line.TrimEnd("`r").Split('|', 7)
            $results[$f[1]] = [pscustomobject]@{ Objects = [int]$f[2]; Errors = [int]$f[3]; Id = $f[4]; Category = $f[5]; Message = $f[6] }
        }
        if ($results.Count -ne $probeCount) { throw "the probes did not all report:`n$($out -join "`n")`n$($errors.Result)" }
        $results
    }

    # The five children run at once; each It below checks one. User nobody gets a HOME of its own, and
    # CAP_DAC_READ_SEARCH alone, to read pwsh and the module where they are installed (under root's home).
    $script:nobodyHome = Join-Path ([IO.Path]::GetTempPath()) "bpft-p$($sandbox.Id)-home"
    New-Item -ItemType Directory $nobodyHome -Force | Out-Null
    & chown nobody $nobodyHome
    $script:children = @{}
    if ($IsLinux -and (Get-Command setpriv -ErrorAction Ignore)) {
        $children.none = Start-Probes @('setpriv', '--bounding-set', '-bpf,-net_admin,-perfmon,-sys_admin', '--inh-caps', '-all')
        $children.netAdmin = Start-Probes @('setpriv', '--bounding-set', '-net_admin', '--inh-caps', '-all')
        $children.sysAdmin = Start-Probes @('setpriv', '--bounding-set', '-sys_admin', '--inh-caps', '-all')
        $children.perfmon = Start-Probes @('setpriv', '--bounding-set', '-perfmon', '--inh-caps', '-all')
        $children.nobody = Start-Probes @('setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups',
            '--inh-caps', '-all,+dac_read_search', '--ambient-caps', '+dac_read_search',
            '/usr/bin/env', "HOME=$nobodyHome", "DOTNET_CLI_HOME=$nobodyHome")
    }

    $script:offline = 'Import-BpfRuleset', 'New-BpfRule', 'Get-BpfChain -Ruleset', 'Test-BpfPacket', 'Show-BpfProgram -Ruleset'

    # What must fail, and what each must name, when the given capabilities are all that is missing.
    function Assert-Probes($Results, [hashtable] $Missing) {
        foreach ($cmdlet in $offline) {
            $Results[$cmdlet].Errors | Should -Be 0 -Because "$cmdlet does not touch the kernel ($($Results[$cmdlet].Message))"
            $Results[$cmdlet].Objects | Should -BeGreaterThan 0 -Because "$cmdlet still works"
        }
        foreach ($cmdlet in $Results.Keys | Where-Object { $_ -notin $offline }) {
            $result = $Results[$cmdlet]
            if ($Missing.ContainsKey($cmdlet)) {
                $result.Errors | Should -Be 1 -Because "$cmdlet should fail with one error"
                $result.Id | Should -BeLike 'Bpfilter.PrivilegeMissing,*' -Because "$cmdlet lacks $($Missing[$cmdlet]): $($result.Message)"
                $result.Category | Should -Be 'PermissionDenied'
                $result.Message | Should -Match "needs $([regex]::Escape($Missing[$cmdlet])), which this process does not have" -Because $cmdlet
                $result.Objects | Should -Be 0
            }
            else {
                $result.Errors | Should -Be 0 -Because "$cmdlet has what it needs ($($result.Message))"
            }
        }
    }

    function Assert-Unchanged {
        $now = Get-BpfChain -Name $name
        $now.ProgramId | Should -Be $published.Chains[0].ProgramId
        $now.State | Should -Be 'Attached'
        @(Get-ChildItem "/sys/fs/bpf/bpfilter/$name").Name | Sort-Object | Should -Be @('INPUT-counters-1', 'INPUT-link-1', 'INPUT-prog-1', 'manifest')
    }
}

AfterAll {
    foreach ($child in $children.Values) { if (-not $child.HasExited) { $child.Kill() }; $child.Dispose() }
    if ($nobodyHome) { Remove-Item $nobodyHome -Recurse -Force -ErrorAction Ignore }
    if ($name -and (Test-Path "/sys/fs/bpf/bpfilter/$name")) { Unpublish-BpfProgram -Name $name -ErrorAction Continue }
    if ($sandbox) { Remove-TestSandbox $sandbox }
}

Describe 'Without privileges' -Skip:(-not $hasSetpriv) {
    It 'as root without CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON and CAP_SYS_ADMIN, each kernel cmdlet names what it needs' {
        $results = Receive-Probes $children.none
        $all = 'CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN'
        Assert-Probes $results @{
            'Publish-BpfProgram' = $all; 'Unpublish-BpfProgram' = $all
            'Get-BpfCounter' = 'CAP_BPF'; 'Get-BpfProgram' = 'CAP_BPF'; 'Get-BpfChain' = 'CAP_BPF'; 'Compare-BpfRuleset' = 'CAP_BPF'
            'Test-BpfPacket -Kernel' = 'CAP_BPF, CAP_NET_ADMIN'; 'Show-BpfProgram -Name' = 'CAP_BPF, CAP_SYS_ADMIN'
            'Get-BpfSet' = 'CAP_BPF'; 'Get-BpfLog' = 'CAP_BPF'
            'Invoke-BpfIptables -L' = 'CAP_BPF'; 'Invoke-BpfIptables -A' = $all
        }
        $results['Publish-BpfProgram'].Message | Should -Match 'runs as root, but with a reduced capability set'
        Assert-Unchanged
    }

    It 'as root without CAP_NET_ADMIN, only what changes links or runs packets fails, and it names CAP_NET_ADMIN alone' {
        Assert-Probes (Receive-Probes $children.netAdmin) @{
            'Publish-BpfProgram' = 'CAP_NET_ADMIN'; 'Unpublish-BpfProgram' = 'CAP_NET_ADMIN'; 'Test-BpfPacket -Kernel' = 'CAP_NET_ADMIN'
            'Invoke-BpfIptables -A' = 'CAP_NET_ADMIN'
        }
        Assert-Unchanged
    }

    It 'as root without CAP_SYS_ADMIN, publishing and reading programs by id fail, naming CAP_SYS_ADMIN alone' {
        Assert-Probes (Receive-Probes $children.sysAdmin) @{
            'Publish-BpfProgram' = 'CAP_SYS_ADMIN'; 'Unpublish-BpfProgram' = 'CAP_SYS_ADMIN'; 'Show-BpfProgram -Name' = 'CAP_SYS_ADMIN'
            'Invoke-BpfIptables -A' = 'CAP_SYS_ADMIN'
        }
        Assert-Unchanged
    }

    It 'as root without CAP_PERFMON, publishing and unpublishing fail, naming CAP_PERFMON alone' {
        Assert-Probes (Receive-Probes $children.perfmon) @{
            'Publish-BpfProgram' = 'CAP_PERFMON'; 'Unpublish-BpfProgram' = 'CAP_PERFMON'; 'Invoke-BpfIptables -A' = 'CAP_PERFMON'
        }
        Assert-Unchanged
    }

    It 'as user nobody, each kernel cmdlet says it needs root as well' {
        $results = Receive-Probes $children.nobody
        $all = 'root (user id 0), CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN'
        Assert-Probes $results @{
            'Publish-BpfProgram' = $all; 'Unpublish-BpfProgram' = $all
            'Get-BpfCounter' = 'root (user id 0), CAP_BPF'; 'Get-BpfProgram' = 'root (user id 0), CAP_BPF'
            'Get-BpfChain' = 'root (user id 0), CAP_BPF'; 'Compare-BpfRuleset' = 'root (user id 0), CAP_BPF'
            'Test-BpfPacket -Kernel' = 'CAP_BPF, CAP_NET_ADMIN'; 'Show-BpfProgram -Name' = 'root (user id 0), CAP_BPF, CAP_SYS_ADMIN'
            'Get-BpfSet' = 'root (user id 0), CAP_BPF'; 'Get-BpfLog' = 'root (user id 0), CAP_BPF'
            'Invoke-BpfIptables -L' = 'root (user id 0), CAP_BPF'; 'Invoke-BpfIptables -A' = $all
        }
        $results['Get-BpfCounter'].Message | Should -Match 'run PowerShell as root \(sudo pwsh\)'
        Assert-Unchanged
    }
}
