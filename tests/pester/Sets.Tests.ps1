# Get-BpfSet, Add-BpfSetMember and Remove-BpfSetMember through pwsh: members change in place, the program stays, -WhatIf
# changes nothing, and mistakes are errors a script can match.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
    $script:sandbox = New-TestSandbox -Subnet 10.207.0
    $script:name = "bpft-s$($sandbox.Id)"
    Set-Content "$TestDrive/sets.yaml" @"
bpfilter: 1
name: $name
sets:
  blocked: { type: ipv4-net, elements: [203.0.113.0/24] }
chains:
  - name: INPUT
    hook: nf-input
    rules:
      - { name: blocked, match: { source: "@blocked" }, action: drop }
"@
    Import-BpfRuleset "$TestDrive/sets.yaml" | Publish-BpfProgram -NetworkNamespace $sandbox.Rx | Out-Null
    $script:program = (Get-BpfChain -Name $name).ProgramId
}

AfterAll {
    if ($name -and (Test-Path "/sys/fs/bpf/bpfilter/$name")) { Unpublish-BpfProgram -Name $name -ErrorAction Continue }
    Remove-TestSandbox $sandbox
}

Describe 'Set members' {
    It 'lists a deployed set' {
        $set = Get-BpfSet -Name $name
        ($set.Name, $set.TypeName, $set.Count) | Should -Be @('blocked', 'ipv4-net', 1)
        (Get-BpfSet -Name $name | Format-Table | Out-String) | Should -Match 'blocked\s+ipv4-net\s+1\s+203\.0\.113\.0/24'
    }

    It 'adds members from the pipeline and removes them, without a new program' {
        $after = '198.51.100.7', '192.0.2.0/25' | Add-BpfSetMember -Name $name -SetName blocked
        @($after.Elements | ForEach-Object { "$_" }) | Should -Be @('203.0.113.0/24', '198.51.100.7', '192.0.2.0/25')
        (Remove-BpfSetMember $name blocked 198.51.100.7).Count | Should -Be 2
        (Get-BpfChain -Name $name).ProgramId | Should -Be $program
    }

    It 'changes nothing with -WhatIf' {
        Add-BpfSetMember -Name $name -SetName blocked -Member 10.9.0.0/16 -WhatIf | Should -BeNullOrEmpty
        (Get-BpfSet -Name $name).Count | Should -Be 2
    }

    It 'refuses a member of the wrong type, an absent member and an unknown set, each with its id' {
        { Add-BpfSetMember -Name $name -SetName blocked -Member 2001:db8::/32 -ErrorAction Stop } | Should -Throw -ErrorId 'Bpfilter.RulesetInvalid,*'
        { Remove-BpfSetMember -Name $name -SetName blocked -Member 10.1.0.0/16 -ErrorAction Stop } | Should -Throw -ErrorId 'Bpfilter.SetMemberNotFound,*'
        { Add-BpfSetMember -Name $name -SetName nosuch -Member 10.1.0.0/16 -ErrorAction Stop } | Should -Throw -ErrorId 'Bpfilter.SetNotFound,*'
        (Get-BpfSet -Name $name).Count | Should -Be 2
    }
}
