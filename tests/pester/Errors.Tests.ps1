# about_Bpfilter_Errors lists exactly the error ids the source raises, each with the category the source gives it,
# every id has a test that provokes it, and here each error a cmdlet raises is provoked for real and checked for its
# id and category. Errors only the engine's API raises are provoked in tests/Bpfilter.Engine.Tests (EngineErrorTests,
# KernelTrustTests), PrivilegeMissing in Privileges.Tests.ps1. The module comes from $env:BPFILTER_MODULE (set by
# build.ps1 Test), or from out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeDiscovery {
    $script:isRoot = $IsLinux -and (id -u) -eq '0'
    $script:hasUnshare = $IsLinux -and $null -ne (Get-Command unshare -ErrorAction Ignore)
}

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    $script:module = (Resolve-Path $module).Path
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:topic = Join-Path (Split-Path $module) 'en-US/about_Bpfilter_Errors.help.txt'
    $script:pwshDll = Join-Path $PSHOME 'pwsh.dll'

    # Errors no test on this machine can provoke without faking the kernel, and why.
    $script:unprovokable = @{
        NotLinux      = 'raised on systems other than Linux only'
        KfuncMissing  = 'needs a kernel older than 6.4, whose BTF lacks the dynptr kfuncs'
        HookUnsupported = 'needs a kernel older than 6.6, which refuses TCX links'
    }

    # "    Bpfilter.Id (Category)" lines of the topic.
    function Get-DocumentedError {
        foreach ($line in Get-Content $topic) {
            if ($line -match '^    Bpfilter\.([A-Za-z0-9]+) \(([A-Za-z ]+)\)$') { [pscustomobject]@{ Id = $Matches[1]; Category = $Matches[2] } }
        }
    }

    # Every id the source raises with its category: BpfilterException(id, FailureCategory.X, ...) and the constructors
    # of its subclasses, KernelException(..., id, FailureCategory.X), KernelCallFailed (category from the errno:
    # CategoryOf) and error records the cmdlets make themselves ("Bpfilter.Id", ErrorCategory.X).
    function Get-RaisedError {
        $files = Get-ChildItem (Join-Path $repo 'src') -Recurse -Filter *.cs | Where-Object { $_.FullName -notmatch '[/\\](obj|bin)[/\\]' }
        foreach ($file in $files) {
            $text = Get-Content $file.FullName -Raw
            foreach ($m in [regex]::Matches($text, '"([A-Z][A-Za-z0-9]+)",\s*(?:FailureCategory\.(\w+)|(CategoryOf)\()')) {
                [pscustomobject]@{ Id = $m.Groups[1].Value; Category = if ($m.Groups[3].Success) { 'by errno' } else { $m.Groups[2].Value }; File = $file.Name }
            }
            foreach ($m in [regex]::Matches($text, '"Bpfilter\.([A-Z][A-Za-z0-9]+)",\s*ErrorCategory\.(\w+)')) {
                [pscustomobject]@{ Id = $m.Groups[1].Value; Category = $m.Groups[2].Value; File = $file.Name }
            }
        }
    }

    # Runs the command, which must fail, and checks the error's id and category.
    function Assert-BpfError([scriptblock] $Command, [string] $Id, [string] $Category) {
        $err = $Command | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike "Bpfilter.$Id,*"
        "$($err.CategoryInfo.Category)" | Should -Be $Category
        $err
    }

    # Runs a script in a new pwsh behind a command prefix (setpriv, unshare) and returns its 'ERROR|label|id|category|message' lines by label.
    function Invoke-Child([string[]] $Prefix, [string] $Script) {
        $file = Join-Path $TestDrive "child-$([guid]::NewGuid().ToString('N')).ps1"
        Set-Content $file $Script
        $out = & $Prefix[0] @($Prefix | Select-Object -Skip 1) dotnet $pwshDll -NoProfile -NonInteractive -File $file 2>&1
        $results = @{}
        foreach ($line in @($out | Where-Object { "$_" -like 'ERROR|*' })) {
            $f = "$line".Split('|', 5)
            $results[$f[1]] = [pscustomobject]@{ Id = $f[2]; Category = $f[3]; Message = $f[4] }
        }
        if ($results.Count -eq 0) { throw "the child reported nothing:`n$($out -join "`n")" }
        $results
    }

    $script:childHeader = @"
Import-Module '$module'
function Probe([string] `$Label, [scriptblock] `$Command) {
    try { & `$Command; "ERROR|`$Label|none||" }
    catch {
        # An engine method called from PowerShell fails with a MethodInvocationException around the engine's error.
        `$e = if (`$_.Exception.InnerException -is [Bpfilter.Engine.BpfilterException, Bpfilter.Engine]) { `$_.Exception.InnerException } else { `$null }
        if (`$e) { 'ERROR|{0}|Bpfilter.{1},engine|{2}|{3}' -f `$Label, `$e.ErrorId, `$e.Category, `$e.Message }
        else { 'ERROR|{0}|{1}|{2}|{3}' -f `$Label, `$_.FullyQualifiedErrorId, `$_.CategoryInfo.Category, `$_.Exception.Message }
    }
}
"@
}

Describe 'about_Bpfilter_Errors' {
    It 'is found by Get-Help' {
        $help = Get-Help about_Bpfilter_Errors -ErrorAction Stop
        @($help).Count | Should -Be 1
        "$help" | Should -Match 'Bpfilter.PrivilegeMissing'
    }

    It 'lists exactly the ids the source raises, each with the category the source gives it' {
        $raised = @(Get-RaisedError)
        $raised.Count | Should -BeGreaterThan 30 -Because 'the scan must find the errors the source raises'
        $conflicts = $raised | Group-Object Id | Where-Object { @($_.Group.Category | Select-Object -Unique).Count -gt 1 } |
            ForEach-Object { "$($_.Name): $(($_.Group | ForEach-Object { "$($_.Category) in $($_.File)" }) -join ', ')" }
        $conflicts | Should -BeNullOrEmpty -Because 'an id has one category wherever it is raised'

        $documented = @(Get-DocumentedError)
        @($documented | Group-Object Id | Where-Object Count -GT 1).Name | Should -BeNullOrEmpty -Because 'each id is listed once'
        $source = @($raised | ForEach-Object { "$($_.Id) ($($_.Category))" } | Sort-Object -Unique)
        $listed = @($documented | ForEach-Object { "$($_.Id) ($($_.Category))" } | Sort-Object -Unique)
        @($source | Where-Object { $_ -notin $listed }) | Should -BeNullOrEmpty -Because 'every id the source raises is documented, with its category'
        @($listed | Where-Object { $_ -notin $source }) | Should -BeNullOrEmpty -Because 'the topic documents no id the source does not raise'
    }

    It 'has a test that provokes each error, but for those this machine cannot provoke' {
        $tests = Get-ChildItem (Join-Path $repo 'tests') -Recurse -Include *.cs, *.ps1 | Where-Object { $_.FullName -notmatch '[/\\](obj|bin)[/\\]' } |
            ForEach-Object { Get-Content $_.FullName -Raw }
        $text = $tests -join "`n"
        $untested = foreach ($entry in Get-DocumentedError) {
            $mentioned = $text -match "Bpfilter\.$($entry.Id)\b" -or $text -match "[`"']$($entry.Id)[`"']"
            if (-not $mentioned -and -not $unprovokable.ContainsKey($entry.Id)) { $entry.Id }
        }
        $untested | Should -BeNullOrEmpty
        @($unprovokable.Keys | Where-Object { $_ -notin (Get-DocumentedError).Id }) | Should -BeNullOrEmpty -Because 'the exemptions are documented ids'
    }
}

Describe 'Errors of the cmdlets that need no kernel' {
    BeforeAll {
        $script:yaml = Join-Path $TestDrive 'two.yaml'
        @"
bpfilter: 1
name: bpft-errors
chains:
  - { name: IN, hook: xdp, interface: lo, rules: [ { match: { protocol: tcp }, action: drop } ] }
  - { name: OUT, hook: tc-egress, interface: lo }
"@ | Set-Content $yaml
        $script:two = Import-BpfRuleset $yaml
    }

    It 'RulesetNotFound, through a path and a literal path' {
        Assert-BpfError { Import-BpfRuleset "$TestDrive/none.yaml" -ErrorAction Stop } 'RulesetNotFound' 'ObjectNotFound'
        Assert-BpfError { Import-BpfRuleset -LiteralPath "$TestDrive/none[1].yaml" -ErrorAction Stop } 'RulesetNotFound' 'ObjectNotFound'
    }

    It 'RulesetSyntax' {
        Set-Content "$TestDrive/bad.yaml" "bpfilter: 1`nname: bad`nchains: [ { name: IN, hook: xdp, interface: lo, policy: maybe } ]"
        $err = Assert-BpfError { Import-BpfRuleset "$TestDrive/bad.yaml" -ErrorAction Stop } 'RulesetSyntax' 'ParserError'
        $err.Exception.Message | Should -BeLike '*bad.yaml:3:*'
    }

    It 'RulesetInvalid' {
        Assert-BpfError { New-BpfRule -Source 10.0.0.0/33 -Action drop } 'RulesetInvalid' 'InvalidData'
    }

    It 'ChainNotFound, ChainAmbiguous and HookUnknown' {
        Assert-BpfError { Test-BpfPacket -Ruleset $two -Chain NOPE -ErrorAction Stop } 'ChainNotFound' 'ObjectNotFound'
        Assert-BpfError { Show-BpfProgram -Ruleset $two -Chain NOPE -ErrorAction Stop } 'ChainNotFound' 'ObjectNotFound'
        Assert-BpfError { Test-BpfPacket -Ruleset $two -ErrorAction Stop } 'ChainAmbiguous' 'InvalidArgument'
        Assert-BpfError { Test-BpfPacket -Ruleset $two -Hook nope -ErrorAction Stop } 'HookUnknown' 'InvalidArgument'
    }

    It 'IptablesCommandInvalid and IptablesRuleInvalid, from Invoke-BpfIptables before it reads anything' {
        Assert-BpfError { Invoke-BpfIptables -Name bpft-none -ErrorAction Stop -- -t nat -L } 'IptablesCommandInvalid' 'InvalidArgument'
        Assert-BpfError { Invoke-BpfIptables -Name bpft-none -ErrorAction Stop -- -A INPUT -p tcp --foo 1 } 'IptablesRuleInvalid' 'InvalidArgument'
        Assert-BpfError { 'iptables -A INPUT -s $ADMIN -j ACCEPT' | Invoke-BpfIptables -Name bpft-none -ErrorAction Stop } 'IptablesCommandInvalid' 'InvalidArgument'
    }

    It 'PacketInvalid' {
        Assert-BpfError { Test-BpfPacket -Ruleset $two -Chain IN -Protocol udp -TcpFlags syn -ErrorAction Stop } 'PacketInvalid' 'InvalidArgument'
        Assert-BpfError { Test-BpfPacket -Ruleset $two -Chain IN -Source 10.0.0.1 -Destination ::1 -ErrorAction Stop } 'PacketInvalid' 'InvalidArgument'
    }
}

Describe 'Errors of the cmdlets that use the kernel' -Skip:(-not $isRoot) {
    BeforeAll {
        . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
        $script:sandbox = New-TestSandbox -Subnet 10.208.0
        $script:name = "bpft-e$($sandbox.Id)"
        $script:rule = New-BpfRule -Protocol udp -DestinationPort 9 -Action drop
    }

    AfterAll {
        foreach ($n in $name, "$name-x", "$name-i") { if (Test-Path "/sys/fs/bpf/bpfilter/$n") { Unpublish-BpfProgram -Name $n -ErrorAction Continue } }
        if ($sandbox) { Remove-TestSandbox $sandbox }
    }

    It 'DeploymentNotFound, from the name selection and from reading a deployment' {
        Assert-BpfError { Get-BpfCounter -Name bpft-none -ErrorAction Stop } 'DeploymentNotFound' 'ObjectNotFound'
        Assert-BpfError { Show-BpfProgram -Name bpft-none -ErrorAction Stop } 'DeploymentNotFound' 'ObjectNotFound'
        Assert-BpfError { Import-BpfRuleset (Join-Path $repo 'samples/demo.yaml') | Compare-BpfRuleset -Name bpft-none -ErrorAction Stop } 'DeploymentNotFound' 'ObjectNotFound'
    }

    It 'InterfaceNotFound, NamespaceNotFound and CgroupNotFound, leaving nothing' {
        Assert-BpfError { $rule | Publish-BpfProgram -Name $name -Interface bpftnope0 -NetworkNamespace $sandbox.Rx -ErrorAction Stop } 'InterfaceNotFound' 'ObjectNotFound'
        Assert-BpfError { $rule | Publish-BpfProgram -Name $name -Interface $sandbox.RxIf -NetworkNamespace bpft-none -ErrorAction Stop } 'NamespaceNotFound' 'ObjectNotFound'
        Assert-BpfError { $rule | Publish-BpfProgram -Name $name -Hook cgroup-ingress -Cgroup bpft-none -ErrorAction Stop } 'CgroupNotFound' 'ObjectNotFound'
        "/sys/fs/bpf/bpfilter/$name" | Should -Not -Exist
    }

    It 'ChainNotFound, ChainExists, ChainInUse, RuleNotFound and RulePositionOutOfRange from iptables commands, leaving nothing' {
        $iptables = @{ Name = "$name-i"; NetworkNamespace = $sandbox.Rx; ErrorAction = 'Stop' }
        Assert-BpfError { Invoke-BpfIptables @iptables -- -A NOPE -j DROP } 'ChainNotFound' 'ObjectNotFound'
        Assert-BpfError { Invoke-BpfIptables @iptables -- -N A ';' -N A } 'ChainExists' 'ResourceExists'
        Assert-BpfError { Invoke-BpfIptables @iptables -- -N A ';' -A A -j ACCEPT ';' -X A } 'ChainInUse' 'InvalidOperation'
        Assert-BpfError { Invoke-BpfIptables @iptables -- -D INPUT -j DROP } 'RuleNotFound' 'ObjectNotFound'
        Assert-BpfError { Invoke-BpfIptables @iptables -- -A INPUT -j DROP ';' -D INPUT 2 } 'RulePositionOutOfRange' 'InvalidArgument'
        Assert-BpfError { Invoke-BpfIptables @iptables -- -A INPUT -p tcp -j REJECT } 'RejectNotAtHook' 'InvalidData'
        "/sys/fs/bpf/bpfilter/$name-i" | Should -Not -Exist
    }

    It 'OffloadUnsupported, on a veth, leaving nothing' {
        $err = Assert-BpfError { $rule | Publish-BpfProgram -Name $name -Interface $sandbox.RxIf -NetworkNamespace $sandbox.Rx -Mode Offload -ErrorAction Stop } 'OffloadUnsupported' 'NotImplemented'
        $err.Exception.Message | Should -Match 'SmartNIC'
        "/sys/fs/bpf/bpfilter/$name" | Should -Not -Exist
    }

    It 'ProgramImageUnavailable, reading a pinned program without CAP_BPF or CAP_SYS_ADMIN' -Skip:($null -eq (Get-Command setpriv -ErrorAction Ignore)) {
        $rule | Publish-BpfProgram -Name $name -Hook tc-ingress -Interface $sandbox.RxIf -NetworkNamespace $sandbox.Rx | Out-Null
        $results = Invoke-Child @('setpriv', '--bounding-set', '-bpf,-sys_admin', '--inh-caps', '-all') ($childHeader + @"
Probe image {
    `$program = [Bpfilter.Engine.Kernel.LoadedProgram, Bpfilter.Engine]::OpenPinned('/sys/fs/bpf/bpfilter/$name/INPUT-prog-1')
    [Bpfilter.Engine.Kernel.ProgramImage, Bpfilter.Engine]::Read(`$program)
}
"@)
        $results.image.Id | Should -Be 'Bpfilter.ProgramImageUnavailable,engine'
        $results.image.Category | Should -Be 'PermissionDenied'
        Unpublish-BpfProgram -Name $name
    }

    It 'BtfUnavailable, CgroupUnavailable and BpffsUnavailable, in a mount namespace without them' -Skip:(-not $hasUnshare) {
        # Private mounts: hiding /sys/kernel/btf, the cgroup2 hierarchy and /sys/fs here changes nothing outside the child.
        "bpfilter: 1`nname: $name-x`nchains: [ { name: IN, hook: nf-input, rules: [ { match: { protocol: udp }, action: drop } ] } ]" |
            Set-Content "$TestDrive/nf.yaml"
        $results = Invoke-Child @('unshare', '--mount', '--propagation', 'private') ($childHeader + @"
`$rule = New-BpfRule -Protocol udp -DestinationPort 9 -Action drop
`$netfilter = Import-BpfRuleset '$TestDrive/nf.yaml'
& mount -t tmpfs bpft-btf /sys/kernel/btf
Probe btf { Test-BpfPacket -Ruleset `$netfilter -Protocol udp -DestinationPort 9 -Kernel -ErrorAction Stop }
Get-Content /proc/self/mountinfo | Where-Object { `$_ -match ' - cgroup2 ' } | ForEach-Object { & umount -l (`$_ -split ' ')[4] }
Probe cgroup { `$rule | Publish-BpfProgram -Name '$name-x' -Hook cgroup-ingress -Cgroup bpft-none -ErrorAction Stop }
& mount -t tmpfs bpft-fs /sys/fs
Probe bpffs { `$rule | Publish-BpfProgram -Name '$name-x' -Interface lo -ErrorAction Stop }
"@)
        foreach ($case in @(('btf', 'BtfUnavailable'), ('cgroup', 'CgroupUnavailable'), ('bpffs', 'BpffsUnavailable'))) {
            $results[$case[0]].Id | Should -BeLike "Bpfilter.$($case[1]),*" -Because $results[$case[0]].Message
            $results[$case[0]].Category | Should -Be 'ResourceUnavailable'
        }
        "/sys/fs/bpf/bpfilter/$name-x" | Should -Not -Exist
    }
}
