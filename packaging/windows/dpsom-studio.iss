; Inno Setup 6 script: Windows x64 installer for DPSOM Studio.
;
; Build on Windows after PyInstaller has made dist\dpsom-studio (see packaging\README.md):
;   python packaging\make_icons.py build\icons
;   iscc /DAppVersion=0.1.0 packaging\windows\dpsom-studio.iss
; Optional defines: BundleDir, IconFile, OutputDir (paths relative to this file).
; Result: dist\DPSOM-Studio-<version>-windows-x64-setup.exe
;
; The installer asks whether to install for all users (needs administrator rights, into
; Program Files) or only for the current user (no rights needed, into the user's
; AppData\Local\Programs). Silent install for deployment tools:
;   DPSOM-Studio-...-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /ALLUSERS [/TASKS="addtopath"]

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\dpsom-studio"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\dpsom-studio.ico"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{5C1E9A62-3B7D-4F0E-9E5A-2D8C4B7A1F30}
AppName=DPSOM Studio
AppVersion={#AppVersion}
AppVerName=DPSOM Studio {#AppVersion}
AppPublisher=DPSOM Studio
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\DPSOM Studio
DefaultGroupName=DPSOM Studio
DisableProgramGroupPage=yes
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog commandline
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=DPSOM-Studio-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\dpsom-studio.exe
UninstallDisplayName=DPSOM Studio {#AppVersion}
Compression=lzma2/max
SolidCompression=yes
LZMANumBlockThreads=4
WizardStyle=modern
ChangesAssociations=yes
ChangesEnvironment=yes
; An upgrade replaces the whole folder: leftovers of an older PyTorch or Qt must not mix in.
UsePreviousAppDir=yes
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "associate"; Description: "Offer DPSOM Studio in ""Open with"" for .h5 project files"; GroupDescription: "File types:"; Flags: unchecked
Name: "addtopath"; Description: "Add the dpsom command line to PATH"; GroupDescription: "Command line:"; Flags: unchecked

[InstallDelete]
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\DPSOM Studio"; Filename: "{app}\dpsom-studio.exe"; Comment: "Learn and explore patient health states"
Name: "{autoprograms}\DPSOM Studio (demo cohort)"; Filename: "{app}\dpsom-studio.exe"; Parameters: "--demo"; Comment: "Open DPSOM Studio on the built-in synthetic ICU cohort"
Name: "{autodesktop}\DPSOM Studio"; Filename: "{app}\dpsom-studio.exe"; Tasks: desktopicon

[Registry]
; .h5 is HDF5 in general, used by many programs: DPSOM Studio registers as one choice in
; "Open with" and never takes the extension over.
Root: HKA; Subkey: "Software\Classes\DPSOMStudio.Project"; ValueType: string; ValueName: ""; ValueData: "DPSOM Studio project"; Flags: uninsdeletekey; Tasks: associate
Root: HKA; Subkey: "Software\Classes\DPSOMStudio.Project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\dpsom-studio.exe,0"; Tasks: associate
Root: HKA; Subkey: "Software\Classes\DPSOMStudio.Project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\dpsom-studio.exe"" ""%1"""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.h5\OpenWithProgids"; ValueType: string; ValueName: "DPSOMStudio.Project"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Applications\dpsom-studio.exe\SupportedTypes"; ValueType: string; ValueName: ".h5"; ValueData: ""; Flags: uninsdeletekey; Tasks: associate

[Run]
Filename: "{app}\dpsom-studio.exe"; Parameters: "--demo"; Description: "Open DPSOM Studio on the demo cohort"; Flags: nowait postinstall skipifsilent unchecked

[Code]
// PATH: the machine-wide variable for an all-users install, the user's own otherwise.
const
  SystemEnvKey = 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment';
  UserEnvKey = 'Environment';

function EnvRoot: Integer;
begin
  if IsAdminInstallMode then Result := HKEY_LOCAL_MACHINE else Result := HKEY_CURRENT_USER;
end;

function EnvKey: String;
begin
  if IsAdminInstallMode then Result := SystemEnvKey else Result := UserEnvKey;
end;

procedure AddToPath(const Dir: String);
var
  Paths: String;
begin
  if not RegQueryStringValue(EnvRoot, EnvKey, 'Path', Paths) then Paths := '';
  if Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') > 0 then exit;
  if (Paths <> '') and (Copy(Paths, Length(Paths), 1) <> ';') then Paths := Paths + ';';
  RegWriteExpandStringValue(EnvRoot, EnvKey, 'Path', Paths + Dir);
end;

procedure RemoveFromPath(const Dir: String);
var
  Paths: String;
  P: Integer;
begin
  if not RegQueryStringValue(EnvRoot, EnvKey, 'Path', Paths) then exit;
  Paths := ';' + Paths + ';';
  P := Pos(';' + Uppercase(Dir) + ';', Uppercase(Paths));
  if P = 0 then exit;
  Delete(Paths, P, Length(Dir) + 1);
  RegWriteExpandStringValue(EnvRoot, EnvKey, 'Path', Copy(Paths, 2, Length(Paths) - 2));
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and WizardIsTaskSelected('addtopath') then
    AddToPath(ExpandConstant('{app}'));
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    RemoveFromPath(ExpandConstant('{app}'));
end;
